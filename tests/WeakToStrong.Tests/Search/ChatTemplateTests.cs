using WeakToStrong.Chat;
using WeakToStrong.Engine;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Search;

[Trait("Category", "Unit")]
public class ChatTemplateTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    /// <summary>The template as text, with BOS/EOS written as the strings their tokenizers use.</summary>
    private static string Text(ChatTemplate template, string user, string? system, string bos, string eos, IReadOnlyList<ChatTurn>? history = null) => string.Concat(
        template.Render(user, system, history).Select(s => s.Kind switch
        {
            PromptSegmentKind.Bos => bos,
            PromptSegmentKind.Eos => eos,
            _ => s.Value,
        }));

    [Fact]
    public void RendersWhatTheHuggingFaceTemplatesPrint()
    {
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Text(ChatTemplate.Llama3Instruct, " Hi there ", null, "<|begin_of_text|>", ""));
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Text(ChatTemplate.Llama3Instruct, "Hi", "Be brief.", "<|begin_of_text|>", ""));
        Assert.Equal("<s>[INST] Hi there [/INST]", Text(ChatTemplate.Llama2Chat, "Hi there ", null, "<s>", "</s>"));
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]", Text(ChatTemplate.Llama2Chat, "Hi", "Be brief.", "<s>", "</s>"));
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\n", Text(ChatTemplate.Zephyr, "Hi", null, "<s>", "</s>"));
        Assert.Equal("<|system|>\n</s>\n<|user|>\nHi</s>\n<|assistant|>\n", Text(ChatTemplate.Zephyr, "Hi", "", "<s>", "</s>"));
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", Text(ChatTemplate.ChatMl, "Hi", null, "", ""));
        Assert.Equal("Hi", Text(ChatTemplate.None, "Hi", null, "<s>", "</s>"));
    }

    /// <summary>
    /// Conversations with earlier turns, as the Hugging Face templates print them (add_generation_prompt=True):
    /// Meta-Llama-3-8B-Instruct (every message trimmed, one BOS), Llama-2-7b-chat-hf (BOS "[INST] … [/INST]" per user
    /// turn, " reply " EOS per assistant turn, the system block inside the first user turn and only the whole first
    /// turn's ends stripped), zephyr-7b-beta ("&lt;|role|&gt;\n" content EOS "\n" per message), Qwen2 ChatML.
    /// </summary>
    [Fact]
    public void RendersConversationsWithEarlierTurnsAsTheHuggingFaceTemplatesDo()
    {
        ChatTurn[] history = [ChatTurn.User(" Hi"), ChatTurn.Assistant("Hello! ")];
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMore<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n",
            Text(ChatTemplate.Llama3Instruct, " More ", "S", "<|begin_of_text|>", "", history));
        Assert.Equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST] Hello! </s><s>[INST] More [/INST]",
            Text(ChatTemplate.Llama2Chat, "More ", "Be brief.", "<s>", "</s>", history));
        Assert.Equal("<s>[INST] Hi [/INST] Hello! </s><s>[INST] More [/INST]", Text(ChatTemplate.Llama2Chat, "More ", null, "<s>", "</s>", history));
        Assert.Equal("<|system|>\nS</s>\n<|user|>\n Hi</s>\n<|assistant|>\nHello! </s>\n<|user|>\nMore</s>\n<|assistant|>\n",
            Text(ChatTemplate.Zephyr, "More", "S", "<s>", "</s>", history));
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n Hi<|im_end|>\n<|im_start|>assistant\nHello! <|im_end|>\n<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n",
            Text(ChatTemplate.ChatMl, "More", "S", "", "", history));
        Assert.Equal("S\n\n Hi\n\nHello! \n\nMore", Text(ChatTemplate.None, "More", "S", "<s>", "</s>", history));
        // Consecutive user turns render where the template allows them; Llama-2-chat's raises, and so does ours.
        Assert.Equal("<|im_start|>user\nA<|im_end|>\n<|im_start|>user\nB<|im_end|>\n<|im_start|>assistant\n", Text(ChatTemplate.ChatMl, "B", null, "", "", [ChatTurn.User("A")]));
        var e = Assert.Throws<InvalidSettingException>(() => ChatTemplate.Llama2Chat.Render("B", null, [ChatTurn.User("A")]));
        Assert.Equal("history", e.ParamName);
        Assert.StartsWith("the Llama-2-chat template needs turns that alternate user, assistant", e.Reason);
        Assert.Throws<InvalidSettingException>(() => ChatTemplate.Llama2Chat.Render("B", null, [ChatTurn.Assistant("A")]));
        Assert.Throws<InvalidSettingException>(() => ChatTemplate.ChatMl.Render("B", null, [null!]));
    }

    [Fact]
    public void EarlierTurnsNeedChatFormattingAndRealTurns()
    {
        var e = Assert.Throws<RequestValidationException>(() => new SearchRequest { Prompt = "More", History = [ChatTurn.User("Hi"), ChatTurn.Assistant("Hello")] }.Validate());
        Assert.Equal(SearchField.History, e.Field);
        Assert.Contains("chat templates", e.Reason);
        e = Assert.Throws<RequestValidationException>(() => new SearchRequest { Prompt = "More", Chat = true, History = [ChatTurn.User("Hi"), null!] }.Validate());
        Assert.Equal(SearchField.History, e.Field);
        Assert.Contains("turn 1", e.Reason);
        Assert.Equal(SearchField.History, Assert.Throws<RequestValidationException>(() => new SearchRequest { Prompt = "More", Chat = true, History = [new ChatTurn((ChatTurnRole)7, "x")] }.Validate()).Field);
        Assert.Equal(2, new SearchRequest { Prompt = "More", Chat = true, History = [ChatTurn.User("Hi"), ChatTurn.Assistant("Hello")] }.Validate().History.Count);
    }

    /// <summary>Special tokens between turns become their ids; the text after the last one is the prompt's tail.</summary>
    [Fact]
    public void EarlierTurnsAreEncodedWithTheirSpecialTokens()
    {
        var tokenizer = models.Llama.Tokenizer;
        var zephyr = new ChatModel(models.Llama.Model!, ChatTemplate.Zephyr);
        var expected = new List<int> { 1 };
        expected.AddRange(tokenizer.Encode("<|user|>\nHi"));
        expected.Add(2);
        expected.AddRange(tokenizer.Encode("\n<|assistant|>\nHello"));
        expected.Add(2);
        expected.AddRange(tokenizer.Encode("\n<|user|>\nMore"));
        expected.Add(2);
        expected.AddRange(tokenizer.Encode("\n<|assistant|>\n"));
        var encoding = zephyr.EncodePrompt("More", chat: true, history: [ChatTurn.User("Hi"), ChatTurn.Assistant("Hello")]);
        Assert.Equal(expected, encoding.Tokens);
        Assert.Equal("\n<|assistant|>\n", encoding.Tail);

        // A conversation the model's template refuses is blamed on the request's History, whoever asked.
        var llama2 = new ChatModel(models.Llama.Model!, ChatTemplate.Llama2Chat);
        var e = Assert.Throws<RequestValidationException>(() => llama2.EncodePrompt("More", chat: true, history: [ChatTurn.User("Hi")]));
        Assert.Equal(SearchField.History, e.Field);
        Assert.StartsWith($"{llama2.Name}: the Llama-2-chat template needs turns that alternate user, assistant", e.Reason);
        Assert.IsType<InvalidSettingException>(e.InnerException);
    }

    [Theory]
    [InlineData("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% endfor %}", ChatTemplateKind.Llama3Instruct)]
    [InlineData("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}", ChatTemplateKind.Llama2Chat)]
    [InlineData("{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}", ChatTemplateKind.Zephyr)]
    [InlineData("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", ChatTemplateKind.ChatMl)]
    public void RecognisesTheFamilyFromTokenizerConfig(string jinja, ChatTemplateKind expected)
    {
        using var folder = TestPaths.Temp();
        File.WriteAllText(folder.File_("tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new { chat_template = jinja }));
        Assert.Equal(expected, ChatTemplate.FromModelDirectory(folder.Path).Kind);

        File.WriteAllText(folder.File_("tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new { chat_template = new[] { new { name = "default", template = jinja } } }));
        Assert.Equal(expected, ChatTemplate.FromModelDirectory(folder.Path).Kind);
    }

    /// <summary>
    /// Qwen2-Instruct's template writes a default system turn when the conversation has none, and Llama-3.1's always
    /// writes a system turn that starts with its knowledge and today's dates. The Jinja below is the part of each
    /// model's tokenizer_config.json chat_template that does it (Qwen/Qwen2-0.5B-Instruct,
    /// meta-llama/Llama-3.1-8B-Instruct, meta-llama/Llama-3.2-1B-Instruct); the expected text is what
    /// apply_chat_template prints with add_generation_prompt=True.
    /// </summary>
    [Fact]
    public void DefaultSystemTurnsOfQwenAndLlama31AreWritten()
    {
        const string qwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        var qwen = ChatTemplate.Recognise(qwen2)!;
        Assert.Equal(ChatTemplateKind.ChatMl, qwen.Kind);
        Assert.Equal("You are a helpful assistant.", qwen.DefaultSystem);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", Text(qwen, "Hi", null, "", ""));
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", Text(qwen, "Hi", "S", "", ""));
        // A template whose system turn is the message's own content has no default.
        Assert.Null(ChatTemplate.Recognise("{% for message in messages %}{{'<|im_start|>system\\n' + message['content'] + '<|im_end|>'}}{% endfor %}")!.DefaultSystem);

        const string llama31 = "{{- bos_token }}\n{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
            + "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n"
            + "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}";
        var llama = ChatTemplate.Recognise(llama31)!;
        Assert.Equal(ChatTemplateKind.Llama3Instruct, llama.Kind);
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Text(llama, "Hi", null, "<|begin_of_text|>", ""));
        Assert.Equal("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Text(llama, "Hi", " Be brief. ", "<|begin_of_text|>", ""));
        // Llama-3.2 takes today's date from strftime_now, which transformers defines.
        var llama32 = ChatTemplate.Recognise(llama31.Replace("{%- set date_string = \"26 Jul 2024\" %}", "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- else %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"))!;
        string today = DateTime.Now.ToString("dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"Cutting Knowledge Date: December 2023\nToday Date: {today}\n\n", llama32.SystemPreamble);
        // Llama-3.0's template has no preamble and writes no system turn of its own.
        Assert.Null(ChatTemplate.Recognise("{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}")!.SystemPreamble);
    }

    [Fact]
    public void BaseModelsHaveNoTemplateAndAnUnknownTemplateMustBeNamed()
    {
        Assert.Equal(ChatTemplateKind.None, ChatTemplate.FromModelDirectory(TestPaths.Fixture("gpt2-tiny")).Kind);
        using var folder = TestPaths.Temp();
        File.WriteAllText(folder.File_("tokenizer_config.json"), """{"chat_template": "{{ messages[0]['content'] }}"}""");
        var error = Assert.Throws<InvalidDataException>(() => ChatTemplate.FromModelDirectory(folder.Path));
        Assert.Contains("name one explicitly", error.Message);
        Assert.Equal(ChatTemplateKind.Zephyr, ChatTemplate.Parse("zephyr").Kind);
        Assert.Equal(ChatTemplateKind.Llama3Instruct, ChatTemplate.Parse("llama-3-instruct").Kind);
        Assert.Throws<ArgumentException>(() => ChatTemplate.Parse("vicuna"));
    }

    [Fact]
    public void SpecialTokensOfATemplateBecomeTheirIdsEvenForSentencePiece()
    {
        var tokenizer = models.Llama.Tokenizer;
        var zephyr = new ChatModel(models.Llama.Model!, ChatTemplate.Zephyr);
        var expected = new List<int> { 1 };
        expected.AddRange(tokenizer.Encode("<|user|>\nHi"));
        expected.Add(2);
        expected.AddRange(tokenizer.Encode("\n<|assistant|>\n"));
        Assert.Equal(expected, zephyr.EncodePrompt("Hi", chat: true).Tokens);

        var llama2 = new ChatModel(models.Llama.Model!, ChatTemplate.Llama2Chat);
        Assert.Equal(new[] { 1 }.Concat(tokenizer.Encode("[INST] Hi [/INST]")), llama2.EncodePrompt("Hi", chat: true).Tokens);
        // Without chat formatting the raw prompt is used, with BOS as the tokenizer asks.
        Assert.Equal(new[] { 1 }.Concat(tokenizer.Encode("Hi")), llama2.EncodePrompt("Hi", chat: false).Tokens);

        var chatMl = new ChatModel(models.Llama.Model!, ChatTemplate.ChatMl);
        var error = Assert.Throws<InvalidOperationException>(() => chatMl.EncodePrompt("Hi", chat: true));
        Assert.Contains("<|im_start|>", error.Message);
    }

    [Fact]
    public void ResponseIsTokenizedWithThePromptsTrailingText()
    {
        var gpt2 = models.Tuned;
        var prompt = gpt2.EncodePrompt("Hello", chat: false);
        var (tokens, start) = prompt.WithResponse(" world");
        Assert.Equal(gpt2.Tokenizer.Encode("Hello world"), tokens);
        Assert.Equal(prompt.Tokens.Count, start);
        // "Hel" + "lo" merge into one token: the response then starts where the common prefix ends.
        var newline = gpt2.EncodePrompt("I like Hel", chat: false);
        var (merged, mergedStart) = newline.WithResponse("lo there");
        Assert.Equal(gpt2.Tokenizer.Encode("I like Hello there"), merged);
        Assert.True(mergedStart < newline.Tokens.Count);
    }
}

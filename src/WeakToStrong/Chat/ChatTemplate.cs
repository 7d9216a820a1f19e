using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using WeakToStrong.Engine;

namespace WeakToStrong.Chat;

/// <summary>The prompt formats built in. Each model wraps the raw user prompt in its own.</summary>
public enum ChatTemplateKind
{
    /// <summary>The raw prompt (base models): BOS when the tokenizer asks for it, then the text.</summary>
    None,

    /// <summary><c>&lt;|begin_of_text|&gt;&lt;|start_header_id|&gt;user&lt;|end_header_id|&gt;\n\n…&lt;|eot_id|&gt;…assistant…\n\n</c>.</summary>
    Llama3Instruct,

    /// <summary><c>&lt;s&gt;[INST] … [/INST]</c> (Llama-2-chat; also Mistral-Instruct, which is the same without a system prompt).</summary>
    Llama2Chat,

    /// <summary><c>&lt;|user|&gt;\n…&lt;/s&gt;\n&lt;|assistant|&gt;\n</c> (zephyr-7b-beta, mistral-7b-sft-beta).</summary>
    Zephyr,

    /// <summary><c>&lt;|im_start|&gt;user\n…&lt;|im_end|&gt;\n&lt;|im_start|&gt;assistant\n</c> (Qwen, many fine-tunes).</summary>
    ChatMl,
}

/// <summary>What a prompt segment is: literal text, or one token named by its role or by its content.</summary>
public enum PromptSegmentKind
{
    Text,

    /// <summary>The tokenizer's BOS token.</summary>
    Bos,

    /// <summary>The tokenizer's EOS token.</summary>
    Eos,

    /// <summary>A special token given by its content, e.g. <c>&lt;|eot_id|&gt;</c>.</summary>
    Special,
}

/// <summary>
/// One piece of a rendered prompt. Special tokens are kept apart from text so that every tokenizer maps them to
/// their ids, including SentencePiece, which encodes a literal "&lt;/s&gt;" in text as characters.
/// </summary>
public readonly record struct PromptSegment(PromptSegmentKind Kind, string Value = "")
{
    public static PromptSegment Text(string text) => new(PromptSegmentKind.Text, text);

    public static PromptSegment Special(string token) => new(PromptSegmentKind.Special, token);

    public static PromptSegment Bos { get; } = new(PromptSegmentKind.Bos);

    public static PromptSegment Eos { get; } = new(PromptSegmentKind.Eos);
}

/// <summary>Who wrote an earlier turn of a conversation.</summary>
public enum ChatTurnRole
{
    User,
    Assistant,
}

/// <summary>One earlier turn of a conversation: a user message or the assistant's reply to it.</summary>
public sealed record ChatTurn(ChatTurnRole Role, string Text)
{
    public static ChatTurn User(string text) => new(ChatTurnRole.User, text);

    public static ChatTurn Assistant(string text) => new(ChatTurnRole.Assistant, text);
}

/// <summary>
/// A chat prompt format: an optional system message, the earlier turns of a conversation, the latest user message and
/// the start of the assistant's reply, written out as the Hugging Face Jinja templates of the model families render
/// it (<c>add_generation_prompt=True</c>).
/// </summary>
public sealed partial class ChatTemplate
{
    private ChatTemplate(ChatTemplateKind kind, string? endOfTurn, string? defaultSystem = null, string? systemPreamble = null)
    {
        Kind = kind;
        EndOfTurnToken = endOfTurn;
        DefaultSystem = defaultSystem;
        SystemPreamble = systemPreamble;
    }

    public static ChatTemplate None { get; } = new(ChatTemplateKind.None, null);

    public static ChatTemplate Llama3Instruct { get; } = new(ChatTemplateKind.Llama3Instruct, "<|eot_id|>");

    public static ChatTemplate Llama2Chat { get; } = new(ChatTemplateKind.Llama2Chat, null);

    public static ChatTemplate Zephyr { get; } = new(ChatTemplateKind.Zephyr, null);

    public static ChatTemplate ChatMl { get; } = new(ChatTemplateKind.ChatMl, "<|im_end|>");

    public ChatTemplateKind Kind { get; }

    /// <summary>
    /// The token that ends the assistant's turn when it is not the tokenizer's EOS (Llama-3's <c>&lt;|eot_id|&gt;</c>,
    /// ChatML's <c>&lt;|im_end|&gt;</c>); null when the turn ends with EOS.
    /// </summary>
    public string? EndOfTurnToken { get; }

    /// <summary>
    /// The system message a ChatML template writes when the conversation has none (Qwen2's "You are a helpful
    /// assistant."), read from the model's Jinja template; null when it writes none.
    /// </summary>
    public string? DefaultSystem { get; }

    /// <summary>
    /// Text a Llama-3 template puts at the start of the system message, which it then always writes (Llama-3.1 and
    /// later: "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"); null for Llama-3.0's template.
    /// </summary>
    public string? SystemPreamble { get; }

    /// <summary>Names accepted by <see cref="Parse"/>, e.g. on the command line.</summary>
    public static IReadOnlyList<string> Names { get; } = ["none", "llama3", "llama2", "zephyr", "chatml"];

    public static ChatTemplate For(ChatTemplateKind kind) => kind switch
    {
        ChatTemplateKind.None => None,
        ChatTemplateKind.Llama3Instruct => Llama3Instruct,
        ChatTemplateKind.Llama2Chat => Llama2Chat,
        ChatTemplateKind.Zephyr => Zephyr,
        ChatTemplateKind.ChatMl => ChatMl,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown chat template"),
    };

    /// <summary>A template by name: none, llama3 (llama-3-instruct), llama2 (llama-2-chat, mistral), zephyr, chatml.</summary>
    /// <exception cref="ArgumentException">The name is none of those.</exception>
    public static ChatTemplate Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(name, out var template)
            ? template
            : throw new ArgumentException($"unknown chat template '{name}'; known: {string.Join(", ", Names)}", nameof(name));
    }

    /// <summary>The template <paramref name="name"/> stands for (as <see cref="Parse"/> reads it); false for any other name.</summary>
    public static bool TryParse(string? name, [NotNullWhen(true)] out ChatTemplate? template)
    {
        template = name?.Trim().ToLowerInvariant().Replace('_', '-') switch
        {
            "none" or "raw" => None,
            "llama3" or "llama-3" or "llama3-instruct" or "llama-3-instruct" => Llama3Instruct,
            "llama2" or "llama-2" or "llama2-chat" or "llama-2-chat" or "mistral" or "mistral-instruct" => Llama2Chat,
            "zephyr" => Zephyr,
            "chatml" => ChatMl,
            _ => null,
        };
        return template is not null;
    }

    /// <summary>
    /// Recognises a Hugging Face Jinja <c>chat_template</c> by the markers that identify each family; null when it
    /// is none of the built-in formats.
    /// </summary>
    public static ChatTemplate? Recognise(string jinja)
    {
        ArgumentNullException.ThrowIfNull(jinja);
        if (jinja.Contains("<|start_header_id|>", StringComparison.Ordinal))
            return Llama31Preamble(jinja) is { } preamble ? new ChatTemplate(ChatTemplateKind.Llama3Instruct, "<|eot_id|>", systemPreamble: preamble) : Llama3Instruct;
        if (jinja.Contains("<|im_start|>", StringComparison.Ordinal))
            return QwenDefaultSystem().Match(jinja) is { Success: true } m ? new ChatTemplate(ChatTemplateKind.ChatMl, "<|im_end|>", defaultSystem: m.Groups[1].Value) : ChatMl;
        if (jinja.Contains("<|user|>", StringComparison.Ordinal) && jinja.Contains("<|assistant|>", StringComparison.Ordinal)) return Zephyr;
        if (jinja.Contains("[INST]", StringComparison.Ordinal)) return Llama2Chat;
        return null;
    }

    /// <summary>
    /// Llama-3.1's system preamble: "Cutting Knowledge Date: …\nToday Date: …\n\n", the date being the template's
    /// date_string default, or today's where the template takes it from strftime_now (Llama-3.2; Hugging Face
    /// transformers defines strftime_now, so apply_chat_template prints the day it runs).
    /// </summary>
    private static string? Llama31Preamble(string jinja)
    {
        var knowledge = KnowledgeDate().Match(jinja);
        if (!knowledge.Success) return null;
        string today = jinja.Contains("strftime_now", StringComparison.Ordinal) || DefaultDate().Match(jinja) is not { Success: true } date
            ? DateTime.Now.ToString("dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture)
            : date.Groups[1].Value;
        return $"Cutting Knowledge Date: {knowledge.Groups[1].Value}\nToday Date: {today}\n\n";
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"Cutting Knowledge Date: ([^""'\\\n]+)")]
    private static partial System.Text.RegularExpressions.Regex KnowledgeDate();

    [System.Text.RegularExpressions.GeneratedRegex(@"set date_string = [""']([^""']+)[""']")]
    private static partial System.Text.RegularExpressions.Regex DefaultDate();

    /// <summary>A literal system turn in a ChatML template (its "\n" as a Jinja escape or a newline): the default system message.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"<\|im_start\|>system(?:\\n|\n)([^'""{}<]+?)<\|im_end\|>")]
    private static partial System.Text.RegularExpressions.Regex QwenDefaultSystem();

    /// <summary>
    /// The template of a model folder: tokenizer_config.json's <c>chat_template</c> when recognised, <see cref="None"/>
    /// when the folder has none (a base model).
    /// </summary>
    /// <exception cref="InvalidDataException">The folder has a chat template that is none of the built-in formats.</exception>
    public static ChatTemplate FromModelDirectory(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        string path = Path.Combine(modelDirectory, "tokenizer_config.json");
        if (!File.Exists(path)) return None;
        string? jinja = ReadChatTemplate(path);
        if (jinja is null) return None;
        return Recognise(jinja)
            ?? throw new InvalidDataException($"{path}: its chat_template is none of the built-in formats ({string.Join(", ", Names)}); name one explicitly");
    }

    /// <summary>The default template of tokenizer_config.json (a string, or the entry named "default" of a list).</summary>
    private static string? ReadChatTemplate(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("chat_template", out var template)) return null;
        if (template.ValueKind == JsonValueKind.String) return template.GetString();
        if (template.ValueKind != JsonValueKind.Array) return null;
        foreach (var entry in template.EnumerateArray())
            if (entry.ValueKind == JsonValueKind.Object
                && entry.TryGetProperty("name", out var name) && name.GetString() == "default"
                && entry.TryGetProperty("template", out var body) && body.ValueKind == JsonValueKind.String)
                return body.GetString();
        return null;
    }

    /// <summary>
    /// The prompt for a user message, after <paramref name="history"/> (earlier turns, oldest first) when given,
    /// ending where the assistant's reply begins. The text segments are exactly what the family's Hugging Face
    /// template prints (Llama-2 and Llama-3 strip each message, as theirs do). <see cref="None"/> (base models) joins
    /// the system message and every turn with blank lines.
    /// </summary>
    /// <exception cref="InvalidSettingException"><paramref name="history"/> holds a null turn, or, for Llama-2-chat (whose
    /// template refuses other orders), its turns do not alternate user, assistant, … starting with a user turn.</exception>
    public IReadOnlyList<PromptSegment> Render(string user, string? system = null, IReadOnlyList<ChatTurn>? history = null)
    {
        ArgumentNullException.ThrowIfNull(user);
        var turns = new List<ChatTurn>(history?.Count + 1 ?? 1);
        foreach (var turn in history ?? [])
        {
            if (turn?.Text is null) throw new InvalidSettingException($"turn {turns.Count} of the conversation is null or has no text", nameof(history));
            turns.Add(turn);
        }
        turns.Add(ChatTurn.User(user));
        var s = new List<PromptSegment>();
        switch (Kind)
        {
            case ChatTemplateKind.None:
                s.Add(PromptSegment.Text(string.Join("\n\n", (system is null ? [] : new[] { system }).Concat(turns.Select(t => t.Text)))));
                break;
            case ChatTemplateKind.Llama3Instruct:
                s.Add(PromptSegment.Bos);
                if (SystemPreamble is not null) Header(s, "system", SystemPreamble + (system?.Trim() ?? ""));
                else if (system is not null) Header(s, "system", system.Trim());
                foreach (var turn in turns) Header(s, Role(turn), turn.Text.Trim());
                s.Add(PromptSegment.Special("<|start_header_id|>"));
                s.Add(PromptSegment.Text("assistant"));
                s.Add(PromptSegment.Special("<|end_header_id|>"));
                s.Add(PromptSegment.Text("\n\n"));
                break;
            case ChatTemplateKind.Llama2Chat:
                for (int i = 0; i < turns.Count; i++)
                {
                    if (turns[i].Role != (i % 2 == 0 ? ChatTurnRole.User : ChatTurnRole.Assistant))
                        throw new InvalidSettingException($"the Llama-2-chat template needs turns that alternate user, assistant, … starting with a user turn; turn {i} is {Role(turns[i])}", nameof(history));
                    if (turns[i].Role == ChatTurnRole.Assistant)
                    {
                        s.Add(PromptSegment.Text($" {turns[i].Text.Trim()} "));
                        s.Add(PromptSegment.Eos);
                        continue;
                    }
                    string content = i == 0 && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{turns[i].Text}" : turns[i].Text;
                    s.Add(PromptSegment.Bos);
                    s.Add(PromptSegment.Text($"[INST] {content.Trim()} [/INST]"));
                }
                break;
            case ChatTemplateKind.Zephyr:
                if (system is not null) Tagged(s, "system", system);
                foreach (var turn in turns) Tagged(s, Role(turn), turn.Text);
                s.Add(PromptSegment.Text("<|assistant|>\n"));
                break;
            case ChatTemplateKind.ChatMl:
                if ((system ?? DefaultSystem) is { } systemMessage) Turn(s, "system", systemMessage);
                foreach (var turn in turns) Turn(s, Role(turn), turn.Text);
                s.Add(PromptSegment.Special("<|im_start|>"));
                s.Add(PromptSegment.Text("assistant\n"));
                break;
        }
        return Merged(s);

        static string Role(ChatTurn turn) => turn.Role == ChatTurnRole.User ? "user" : "assistant";

        static void Header(List<PromptSegment> s, string role, string text)
        {
            s.Add(PromptSegment.Special("<|start_header_id|>"));
            s.Add(PromptSegment.Text(role));
            s.Add(PromptSegment.Special("<|end_header_id|>"));
            s.Add(PromptSegment.Text("\n\n" + text));
            s.Add(PromptSegment.Special("<|eot_id|>"));
        }

        // Zephyr: "<|role|>\n" + content + EOS, then the newline that follows each message in its template.
        static void Tagged(List<PromptSegment> s, string role, string text)
        {
            s.Add(PromptSegment.Text($"<|{role}|>\n{text}"));
            s.Add(PromptSegment.Eos);
            s.Add(PromptSegment.Text("\n"));
        }

        static void Turn(List<PromptSegment> s, string role, string text)
        {
            s.Add(PromptSegment.Special("<|im_start|>"));
            s.Add(PromptSegment.Text(role + "\n" + text));
            s.Add(PromptSegment.Special("<|im_end|>"));
            s.Add(PromptSegment.Text("\n"));
        }
    }

    /// <summary>Adjacent text segments joined: text is tokenized a segment at a time, so a split would change merges.</summary>
    private static List<PromptSegment> Merged(List<PromptSegment> segments)
    {
        var merged = new List<PromptSegment>(segments.Count);
        foreach (var segment in segments)
        {
            if (segment.Kind == PromptSegmentKind.Text && merged.Count > 0 && merged[^1].Kind == PromptSegmentKind.Text)
                merged[^1] = PromptSegment.Text(merged[^1].Value + segment.Value);
            else
                merged.Add(segment);
        }
        return merged;
    }

    public override string ToString() => Kind.ToString();
}

using System.Text.Json;
using WeakToStrong.Chat;

namespace WeakToStrong.Tests.Search;

/// <summary>
/// The one reader of OpenAI's chat "messages" (the server's /v1/chat/completions, the CLI's --messages and eval
/// prompt lines) and the typed JSON reads it shares with the server: each refusal names its field by path.
/// </summary>
[Trait("Category", "Unit")]
public sealed class OpenAiMessagesTests
{
    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement;

    [Fact]
    public void AConversationBecomesSystemPromptHistoryAndPrompt()
    {
        var conversation = OpenAiMessages.Parse(Json("""
            [{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"No lists."}]},
             {"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!","tool_calls":[]},
             {"role":"user","content":[{"type":"text","text":"More "},{"type":"text","text":"please"}]}]
            """));
        Assert.Equal("More please", conversation.Prompt);
        Assert.Equal("Be brief.\n\nNo lists.", conversation.System);
        Assert.Equal([ChatTurn.User("Hi"), ChatTurn.Assistant("Hello!")], conversation.History);
    }

    [Theory]
    [InlineData("""{"role":"user","content":"a"}""", "messages", nameof(JsonFieldError.WrongType), "'messages' must be an array (got an object).")]
    [InlineData("""[]""", "messages", nameof(JsonFieldError.InvalidValue), "'messages' must contain a user message.")]
    [InlineData("""[{"role":"system","content":"s"}]""", "messages", nameof(JsonFieldError.InvalidValue), "'messages' must contain a user message.")]
    [InlineData("""["hi"]""", "messages[0]", nameof(JsonFieldError.WrongType), "'messages[0]' must be an object (got a string).")]
    [InlineData("""[{"content":"a"}]""", "messages[0].role", nameof(JsonFieldError.Missing), "'messages[0].role' is required.")]
    [InlineData("""[{"role":null,"content":"a"}]""", "messages[0].role", nameof(JsonFieldError.Missing), "'messages[0].role' is required.")]
    [InlineData("""[{"role":"robot","content":"a"}]""", "messages[0].role", nameof(JsonFieldError.InvalidValue), "'messages[0].role' must be system, developer, user or assistant (got 'robot').")]
    [InlineData("""[{"role":"tool","content":"42"}]""", "messages[0].role", nameof(JsonFieldError.Unsupported), "'messages[0]': tool messages are not supported (the search does not call tools).")]
    [InlineData("""[{"role":"user","content":"a"},{"role":"system","content":"b"},{"role":"user","content":"c"}]""", "messages[1].role", nameof(JsonFieldError.InvalidValue),
        "'messages[1]': system and developer messages must come before the conversation's user and assistant messages.")]
    [InlineData("""[{"role":"user","content":"a"},{"role":"assistant","content":null,"tool_calls":[{"id":"x"}]},{"role":"user","content":"c"}]""", "messages[1].tool_calls", nameof(JsonFieldError.Unsupported),
        "'messages[1].tool_calls': tool calls are not supported (the search does not call tools).")]
    [InlineData("""[{"role":"user"}]""", "messages[0].content", nameof(JsonFieldError.Missing), "'messages[0].content' is required.")]
    [InlineData("""[{"role":"user","content":3}]""", "messages[0].content", nameof(JsonFieldError.WrongType), "'messages[0].content' must be a string or an array of text parts (got a number).")]
    [InlineData("""[{"role":"user","content":[{"type":"image_url"}]}]""", "messages[0].content[0]", nameof(JsonFieldError.Unsupported), "'messages[0].content[0]': only text parts are supported.")]
    [InlineData("""[{"role":"user","content":[{"type":"text","text":5}]}]""", "messages[0].content[0].text", nameof(JsonFieldError.WrongType), "'messages[0].content[0].text' must be a string (got a number).")]
    [InlineData("""[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]""", "messages[1]", nameof(JsonFieldError.InvalidValue),
        "the last message must be a user message (messages[1] is an assistant message): the search writes the next assistant reply.")]
    public void EachRefusalNamesItsFieldAndKind(string json, string path, string error, string message)
    {
        var e = Assert.Throws<JsonFieldException>(() => OpenAiMessages.Parse(Json(json)));
        Assert.Equal((path, error, message), (e.Path, e.Error.ToString(), e.Message));
    }

    [Fact]
    public void PathsStartWhereTheArrayWasFound()
    {
        var e = Assert.Throws<JsonFieldException>(() => OpenAiMessages.Parse(Json("""[{"role":"user","content":"a"},{"role":"bot"}]"""), "body.messages"));
        Assert.Equal("body.messages[1].role", e.Path);
    }

    [Fact]
    public void TypedReadsNameTheFieldAndTellAWrongTypeFromAValueOutOfRange()
    {
        var obj = Json("""{"i":3,"big":1e12,"half":2.5,"s":"x","nil":null,"b":true,"inf":1e999,"u":18446744073709551615,"neg":-1}""");
        Assert.Equal(3, RequestJson.Int(obj, "i"));
        Assert.Null(RequestJson.Int(obj, "nil"));
        Assert.Null(RequestJson.String(obj, "absent"));
        Assert.Equal("x", RequestJson.String(obj, "s"));
        Assert.Equal(true, RequestJson.Bool(obj, "b"));
        Assert.Equal(ulong.MaxValue, RequestJson.ULong(obj, "u"));

        var big = Assert.Throws<JsonFieldException>(() => RequestJson.Int(obj, "big", "search.big"));
        Assert.Equal(("search.big", JsonFieldError.InvalidValue, "'search.big' is out of range (got 1e12)."), (big.Path, big.Error, big.Message));
        var half = Assert.Throws<JsonFieldException>(() => RequestJson.Int(obj, "half"));
        Assert.Equal(("half", JsonFieldError.WrongType, "'half' must be an integer (got a number)."), (half.Path, half.Error, half.Message));
        Assert.Equal("'s' must be a boolean (got a string).", Assert.Throws<JsonFieldException>(() => RequestJson.Bool(obj, "s")).Message);
        var inf = Assert.Throws<JsonFieldException>(() => RequestJson.Double(obj, "inf"));
        Assert.Equal((JsonFieldError.InvalidValue, "'inf' is out of range (got 1e999)."), (inf.Error, inf.Message));
        Assert.Equal("'s' must be a number (got a string).", Assert.Throws<JsonFieldException>(() => RequestJson.Double(obj, "s")).Message);
        Assert.Equal(JsonFieldError.WrongType, Assert.Throws<JsonFieldException>(() => RequestJson.ULong(obj, "neg")).Error);
        Assert.Equal(JsonFieldError.WrongType, Assert.Throws<JsonFieldException>(() => RequestJson.Long(obj, "s")).Error);
    }
}

using System.Reflection;
using Microsoft.Extensions.AI;
using WeakToStrong.ChatClient;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.ChatClient;

/// <summary>The chat client names every field the library can refuse by what its caller set: a ChatOptions property, a w2s key, or the messages.</summary>
[Trait("Category", "Unit")]
public class ChatRequestMappingTests
{
    private static readonly ChatMessage[] Messages = [new(ChatRole.User, "hi")];

    [Fact]
    public void EveryFieldTheLibraryCanBlameHasAChatName()
    {
        var keys = typeof(WeakToStrongChatKeys).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetValue(null)!).ToHashSet();
        foreach (var field in Enum.GetValues<SearchField>())
        {
            Assert.True(ChatRequestMapping.Options.TryGetValue(field, out string? name), $"SearchField.{field} has no chat name");
            bool known = name == "messages" || keys.Contains(name)
                || (name.StartsWith("ChatOptions.", StringComparison.Ordinal) && typeof(ChatOptions).GetProperty(name["ChatOptions.".Length..]) is not null);
            Assert.True(known, $"SearchField.{field} is named '{name}', which is no chat option, w2s key or the messages");
        }
    }

    [Theory]
    [InlineData(SearchField.TopK, "ChatOptions.TopK", "top-k must be ≥ 0 (0 keeps all tokens)")]
    [InlineData(SearchField.MaxNewTokens, "ChatOptions.MaxOutputTokens", "max new tokens must be ≥ 0")]
    [InlineData(SearchField.Successors, WeakToStrongChatKeys.Successors, "the successors per state must be ≥ 1")]
    public void ARefusedOptionIsAnArgumentExceptionNamingItWithTheLibrarysReason(SearchField field, string name, string reason)
    {
        var options = new ChatOptions { AdditionalProperties = [] };
        switch (field)
        {
            case SearchField.TopK: options.TopK = -1; break;
            case SearchField.MaxNewTokens: options.MaxOutputTokens = -1; break;
            default: options.AdditionalProperties[WeakToStrongChatKeys.Successors] = 0; break;
        }
        var e = Assert.Throws<ArgumentException>(() => ChatRequestMapping.Map(Messages, options, new SearchRequest { Prompt = "" }));
        Assert.Equal(name, e.ParamName);
        Assert.StartsWith($"{name}: {reason} (", e.Message);
        Assert.Equal(field, Assert.IsType<RequestValidationException>(e.InnerException).Field);
    }
}

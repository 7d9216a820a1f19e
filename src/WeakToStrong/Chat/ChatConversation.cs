namespace WeakToStrong.Chat;

/// <summary>
/// A conversation as the search takes it: the latest user message (the prompt), the turns before it, and the system
/// messages joined by blank lines. The server, the chat client and the CLI build theirs here, so they agree.
/// </summary>
public sealed record ChatConversation(string Prompt, string? System, IReadOnlyList<ChatTurn> History)
{
    /// <summary>
    /// The conversation of <paramref name="system"/> messages and <paramref name="turns"/>; null when the turns do
    /// not end with a user message (none at all, or a final assistant reply), for the caller to name in its terms.
    /// </summary>
    public static ChatConversation? TryCreate(IReadOnlyList<string> system, IReadOnlyList<ChatTurn> turns)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(turns);
        if (turns.Count == 0 || turns[^1].Role != ChatTurnRole.User) return null;
        return new ChatConversation(turns[^1].Text, system.Count == 0 ? null : string.Join("\n\n", system), turns.Take(turns.Count - 1).ToList());
    }
}

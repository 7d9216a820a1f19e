using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection.Extensions;
using WeakToStrong.ChatClient;
using WeakToStrong.Search;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a weak-to-strong chat client with a host's services.</summary>
public static class WeakToStrongServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="WeakToStrongSearch"/> loaded from <paramref name="models"/> (a singleton, loaded when
    /// first resolved, disposed with the container) and an <see cref="IChatClient"/> over it.
    /// </summary>
    /// <returns>The builder, so that middleware (logging, OpenTelemetry, caching) composes around the client.</returns>
    public static ChatClientBuilder AddWeakToStrongChatClient(this IServiceCollection services, SearchModelOptions models, Action<WeakToStrongChatClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(models);
        return services.AddWeakToStrongChatClient(_ => WeakToStrongSearch.Load(models), configure);
    }

    /// <summary>
    /// Registers the <see cref="WeakToStrongSearch"/> that <paramref name="searchFactory"/> makes (a singleton,
    /// disposed with the container) and an <see cref="IChatClient"/> over it.
    /// </summary>
    /// <returns>The builder, so that middleware (logging, OpenTelemetry, caching) composes around the client.</returns>
    public static ChatClientBuilder AddWeakToStrongChatClient(this IServiceCollection services, Func<IServiceProvider, WeakToStrongSearch> searchFactory, Action<WeakToStrongChatClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(searchFactory);
        var options = new WeakToStrongChatClientOptions();
        configure?.Invoke(options);
        // The container owns the search; the client must not dispose it as well.
        options.DisposeSearch = false;
        services.TryAddSingleton(searchFactory);
        return services.AddChatClient(sp => new WeakToStrongChatClient(sp.GetRequiredService<WeakToStrongSearch>(), options));
    }
}

namespace WeakToStrong.Backends;

/// <summary>
/// A backend that splits ops over threads and can say how long the calling thread waited for the others at the end
/// of its parallel regions (the profile's barrier time, <see cref="Engine.Profiling.ForwardOp.Barrier"/>). The
/// counters are the calling thread's: a forward runs on one thread, and two models' forwards on two threads do not
/// mix.
/// </summary>
internal interface IBarrierClock
{
    /// <summary>Whether the calling thread's waits are timed (off by default: then nothing is read or counted).</summary>
    bool TimeWaits { get; set; }

    /// <summary>Stopwatch ticks the calling thread has waited at region ends while <see cref="TimeWaits"/> was on.</summary>
    long WaitTicks { get; }

    /// <summary>Parallel regions the calling thread has waited at while <see cref="TimeWaits"/> was on.</summary>
    long Waits { get; }
}

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>CUDA cannot be used here: no driver, no device, or a library missing. The message is one line saying which.</summary>
public sealed class CudaUnavailableException(string reason) : Exception(reason);

/// <summary>A CUDA driver API call failed.</summary>
public sealed class CudaException(string call, CuResult status, string errorName)
    : Exception($"{call} failed: {errorName} ({(int)status})")
{
    public string Call { get; } = call;

    public CuResult Status { get; } = status;

    public string ErrorName { get; } = errorName;
}

/// <summary>An NVRTC call failed; a failed compilation carries the compiler's log.</summary>
public sealed class NvrtcException(string call, NvrtcResult status, string errorName, string log = "")
    : Exception(log.Length == 0 ? $"{call} failed: {errorName}" : $"{call} failed: {errorName}\n{log}")
{
    public string Call { get; } = call;

    public NvrtcResult Status { get; } = status;

    public string ErrorName { get; } = errorName;

    /// <summary>The program log (compiler diagnostics), empty when the call was not a compilation.</summary>
    public string Log { get; } = log;
}

/// <summary>A cuBLAS call failed.</summary>
public sealed class CublasException(string call, CublasStatus status)
    : Exception($"{call} failed: {status.Name()} ({(int)status})")
{
    public string Call { get; } = call;

    public CublasStatus Status { get; } = status;
}

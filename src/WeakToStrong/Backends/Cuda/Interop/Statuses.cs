namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>CUresult (the values our calls can return; the driver names any other through cuGetErrorName).</summary>
public enum CuResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    Deinitialized = 4,
    NoDevice = 100,
    InvalidDevice = 101,
    InvalidImage = 200,
    InvalidContext = 201,
    NoBinaryForGpu = 209,
    InvalidPtx = 218,
    UnsupportedPtxVersion = 222,
    NotFound = 500,
    NotReady = 600,
    IllegalAddress = 700,
    LaunchOutOfResources = 701,
    LaunchTimeout = 702,
    LaunchFailed = 719,
    StreamCaptureUnsupported = 900,
    StreamCaptureInvalidated = 901,
    Unknown = 999,
}

/// <summary>nvrtcResult.</summary>
public enum NvrtcResult
{
    Success = 0,
    OutOfMemory = 1,
    ProgramCreationFailure = 2,
    InvalidInput = 3,
    InvalidProgram = 4,
    InvalidOption = 5,
    Compilation = 6,
    BuiltinOperationFailure = 7,
    NoNameExpressionsAfterCompilation = 8,
    NoLoweredNamesBeforeCompilation = 9,
    NameExpressionNotValid = 10,
    InternalError = 11,
}

/// <summary>cublasStatus_t.</summary>
public enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

internal static class StatusNames
{
    public static string Name(this CublasStatus status) => status switch
    {
        CublasStatus.Success => "CUBLAS_STATUS_SUCCESS",
        CublasStatus.NotInitialized => "CUBLAS_STATUS_NOT_INITIALIZED",
        CublasStatus.AllocFailed => "CUBLAS_STATUS_ALLOC_FAILED",
        CublasStatus.InvalidValue => "CUBLAS_STATUS_INVALID_VALUE",
        CublasStatus.ArchMismatch => "CUBLAS_STATUS_ARCH_MISMATCH",
        CublasStatus.MappingError => "CUBLAS_STATUS_MAPPING_ERROR",
        CublasStatus.ExecutionFailed => "CUBLAS_STATUS_EXECUTION_FAILED",
        CublasStatus.InternalError => "CUBLAS_STATUS_INTERNAL_ERROR",
        CublasStatus.NotSupported => "CUBLAS_STATUS_NOT_SUPPORTED",
        CublasStatus.LicenseError => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => $"CUBLAS_STATUS_{(int)status}",
    };
}

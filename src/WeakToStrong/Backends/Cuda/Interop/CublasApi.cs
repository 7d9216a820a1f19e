using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>Raw imports of cuBLAS v2 (<c>cublas_api.h</c>); statuses are checked by <see cref="Cublas"/>.</summary>
internal static unsafe partial class CublasApi
{
    private const string Lib = NativeLibraries.CublasName;

    // cublasStatus_t cublasCreate_v2(cublasHandle_t* handle)
    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")]
    public static partial CublasStatus Create(out nint handle);

    // cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")]
    public static partial CublasStatus Destroy(nint handle);

    // cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")]
    public static partial CublasStatus SetStream(nint handle, nint stream);

    // cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
    //     int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
    //     const void* B, cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
    //     cublasComputeType_t computeType, cublasGemmAlgo_t algo)
    [LibraryImport(Lib, EntryPoint = "cublasGemmEx")]
    public static partial CublasStatus GemmEx(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        void* alpha, ulong a, CudaDataType aType, int lda, ulong b, CudaDataType bType, int ldb, void* beta, ulong c,
        CudaDataType cType, int ldc, CublasComputeType computeType, int algorithm);

    // cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
    //     cublasOperation_t transb, int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
    //     int lda, long long int strideA, const void* B, cudaDataType Btype, int ldb, long long int strideB,
    //     const void* beta, void* C, cudaDataType Ctype, int ldc, long long int strideC, int batchCount,
    //     cublasComputeType_t computeType, cublasGemmAlgo_t algo)
    [LibraryImport(Lib, EntryPoint = "cublasGemmStridedBatchedEx")]
    public static partial CublasStatus GemmStridedBatchedEx(nint handle, CublasOperation transA, CublasOperation transB, int m, int n,
        int k, void* alpha, ulong a, CudaDataType aType, int lda, long strideA, ulong b, CudaDataType bType, int ldb, long strideB,
        void* beta, ulong c, CudaDataType cType, int ldc, long strideC, int batchCount, CublasComputeType computeType, int algorithm);
}

/// <summary>cublasOperation_t.</summary>
internal enum CublasOperation
{
    None = 0,
    Transpose = 1,
}

/// <summary>cudaDataType (library_types.h).</summary>
internal enum CudaDataType
{
    R32F = 0,
    R16F = 2,
    R16BF = 14,
}

/// <summary>cublasComputeType_t.</summary>
internal enum CublasComputeType
{
    Compute32F = 68,
    Compute32FPedantic = 69,
}

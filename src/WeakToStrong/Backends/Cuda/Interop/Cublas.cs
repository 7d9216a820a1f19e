using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>A cuBLAS handle bound to one stream; row-major GEMM helpers over <see cref="CublasApi"/>.</summary>
internal sealed unsafe class Cublas : SafeHandle
{
    public Cublas(nint stream) : base(0, true)
    {
        NativeLibraries.Require(CudaLibrary.Cublas);
        ThrowIfFailed(CublasApi.Create(out nint h));
        SetHandle(h);
        ThrowIfFailed(CublasApi.SetStream(h, stream));
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => CublasApi.Destroy(handle) == CublasStatus.Success;

    public static void ThrowIfFailed(CublasStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CublasStatus.Success) throw new CublasException(Cu.CallName(call), status);
    }

    /// <summary>
    /// y[rows, outDim] = x[rows, inDim] · W[outDim, inDim]ᵀ, all row-major, F32 accumulation. In cuBLAS' column-major
    /// view y is yᵀ [outDim, rows] = W · xᵀ, i.e. GEMM(op(A) = Aᵀ with A = W as [inDim, outDim], B = x as [inDim, rows]).
    /// <paramref name="ldy"/> is y's row stride (≥ outDim) so that a slice of output features can be written.
    /// </summary>
    public void LinearRowMajor(ulong x, CudaDataType xType, ulong w, CudaDataType wType, ulong y, int rows, int inDim, int outDim, int ldy)
    {
        float alpha = 1f, beta = 0f;
        ThrowIfFailed(CublasApi.GemmEx(handle, CublasOperation.Transpose, CublasOperation.None, outDim, rows, inDim, &alpha, w, wType, inDim,
            x, xType, inDim, &beta, y, CudaDataType.R32F, ldy, CublasComputeType.Compute32F, -1 /* CUBLAS_GEMM_DEFAULT */));
    }

    /// <summary>Batched form of <see cref="LinearRowMajor"/> with strides in elements (used by the GEMM ceiling benchmark).</summary>
    public void LinearRowMajorBatched(ulong x, CudaDataType xType, long strideX, ulong w, CudaDataType wType, long strideW, ulong y, long strideY,
        int rows, int inDim, int outDim, int batch)
    {
        float alpha = 1f, beta = 0f;
        ThrowIfFailed(CublasApi.GemmStridedBatchedEx(handle, CublasOperation.Transpose, CublasOperation.None, outDim, rows, inDim, &alpha,
            w, wType, inDim, strideW, x, xType, inDim, strideX, &beta, y, CudaDataType.R32F, outDim, strideY, batch,
            CublasComputeType.Compute32F, -1));
    }
}

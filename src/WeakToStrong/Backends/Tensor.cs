namespace WeakToStrong.Backends;

/// <summary>
/// A flat buffer owned by a backend: host memory for <c>cpu</c>, device memory for <c>cuda</c>.
/// Shapes live in the code that uses the buffer (see the shape comments there); the tensor knows only its
/// element type and length.
/// </summary>
public abstract class Tensor : IDisposable
{
    protected Tensor(DType dtype, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        DType = dtype;
        Length = length;
    }

    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    public long ByteLength => Length * DType.Size();

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        Release();
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();
}

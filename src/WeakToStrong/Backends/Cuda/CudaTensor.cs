namespace WeakToStrong.Backends.Cuda;

/// <summary>A tensor in device memory (host memory under the emulator).</summary>
public sealed class CudaTensor : Tensor
{
    private readonly IDeviceRuntime _runtime;

    internal CudaTensor(IDeviceRuntime runtime, DType dtype, long length) : base(dtype, length)
    {
        _runtime = runtime;
        Address = runtime.Allocate(Math.Max(ByteLength, 16));
    }

    /// <summary>Device address.</summary>
    internal ulong Address { get; private set; }

    internal IDeviceRuntime Runtime => _runtime;

    protected override void Release()
    {
        _runtime.Free(Address);
        Address = 0;
    }
}

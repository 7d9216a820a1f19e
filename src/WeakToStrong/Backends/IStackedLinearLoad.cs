namespace WeakToStrong.Backends;

/// <summary>
/// A backend that builds a linear weight stacked from several row-major parts (q|k|v, gate|up) straight from each
/// part's bytes, so the loader need not first copy the parts into one buffer.
/// </summary>
internal interface IStackedLinearLoad
{
    /// <summary>
    /// The weight <see cref="IBackend.LoadLinear(ReadOnlySpan{byte}, DType, int, int, bool)"/> would give for the
    /// parts' bytes laid one after the other: part i is [partRows[i], inDim] row-major in <paramref name="dtype"/> at
    /// parts[i], which must stay readable (e.g. a mapped file) for the call.
    /// </summary>
    unsafe Tensor LoadLinearStacked(ReadOnlySpan<nint> parts, ReadOnlySpan<int> partRows, DType dtype, int inDim);
}

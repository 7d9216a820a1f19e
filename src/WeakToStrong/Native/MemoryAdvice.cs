using System.Runtime.InteropServices;

namespace WeakToStrong.Native;

/// <summary>libc's madvise (Linux): advice on ranges of this process's mappings.</summary>
internal static partial class MemoryAdvice
{
    private const int MadvDontNeed = 4;
    private const int MadvHugePage = 14;
    private const int MadvPopulateWrite = 23;
    private const int EInval = 22;

    /// <summary>Drops a page-aligned range's pages from this process (a file mapping maps them again on access).</summary>
    public static void DropPages(nint address, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        if (madvise(address, (nuint)length, MadvDontNeed) != 0)
            throw new InvalidOperationException($"madvise(MADV_DONTNEED, {length} bytes) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>
    /// Asks for transparent 2 MiB pages over the whole 2 MiB-aligned part of a range (MADV_HUGEPAGE): one fault then
    /// backs 2 MiB instead of 4 KiB. Advice only: where the kernel has no transparent huge pages (or they are off) the
    /// range keeps 4 KiB pages and nothing fails.
    /// </summary>
    public static void AdviseHugePages(nint address, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        const long huge = 2 << 20;
        long start = (address + huge - 1) / huge * huge, end = (address + length) / huge * huge;
        if (end > start) madvise((nint)start, (nuint)(end - start), MadvHugePage);
    }

    /// <summary>
    /// Faults in a fresh anonymous range for writing in one call (MADV_POPULATE_WRITE, Linux 5.14+) rather than one
    /// trap per 4 KiB page as it is first written; an older kernel answers EINVAL and the pages fault in as usual.
    /// </summary>
    public static void Populate(nint address, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        long page = Environment.SystemPageSize;
        long start = (address + page - 1) / page * page, end = (address + length) / page * page;
        if (end <= start) return;
        if (madvise((nint)start, (nuint)(end - start), MadvPopulateWrite) != 0 && Marshal.GetLastPInvokeError() != EInval)
            throw new InvalidOperationException($"madvise(MADV_POPULATE_WRITE, {end - start} bytes) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary><c>int madvise(void *addr, size_t length, int advice)</c>; 0 on success, else −1 and errno.</summary>
    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint address, nuint length, int advice);
}

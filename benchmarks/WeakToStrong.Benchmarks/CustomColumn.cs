using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace WeakToStrong.Benchmarks;

/// <summary>A summary column whose cells a benchmark computes from what its methods recorded in process.</summary>
internal abstract class CustomColumn(string name, string legend) : IColumn
{
    public string Id => name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => legend;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    /// <summary>The cell of <paramref name="benchmarkCase"/>, or "?" when nothing was recorded for it.</summary>
    public abstract string GetValue(Summary summary, BenchmarkCase benchmarkCase);
}

using System.Reflection;

namespace WeakToStrong.Tests;

/// <summary>
/// Every test class is in exactly one of the two runs: <c>--filter Category=Unit</c> (fast: in-process, small models) or
/// <c>--filter Category=Integration</c> (child processes, HTTP servers, the bundled models end to end, long suites,
/// the GPU suite), so the two runs together are the whole suite. A class without the trait would silently drop out
/// of both filtered runs.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TestCategoryTests
{
    private static readonly string[] Allowed = ["Unit", "Integration"];

    [Fact]
    public void EveryTestClassIsUnitOrIntegration()
    {
        var problems = new List<string>();
        var testClasses = typeof(TestCategoryTests).Assembly.GetTypes().Where(t => t.IsClass && !t.IsAbstract && TestMethods(t).Any()).ToList();
        foreach (var type in testClasses)
        {
            var categories = Categories(type.GetCustomAttributesData()).ToList();
            if (categories.Count != 1 || !Allowed.Contains(categories[0]))
                problems.Add($"{type.FullName}: Category [{string.Join(", ", categories)}], want exactly one of Unit, Integration");
            // On the class itself, where a reader looks: a base's Category would be a second value for every class
            // derived from it (two classes share KernelComparisons' facts, one Unit, one Integration).
            for (var b = type.BaseType; b is not null; b = b.BaseType)
                if (Categories(b.GetCustomAttributesData()).Any())
                    problems.Add($"{type.FullName}: its base {b.Name} has a Category; put it on the test class only");
            // A method's own Category would add a second value to its class's, putting the test in both runs.
            foreach (var method in TestMethods(type).Where(m => Categories(m.GetCustomAttributesData()).Any()))
                problems.Add($"{type.FullName}.{method.Name}: Category on the method; put it on the class only");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        // The reflection sees the test classes at all: this one, and a derived one whose facts live in its base.
        Assert.Contains(typeof(TestCategoryTests), testClasses);
        Assert.Contains(typeof(CpuOps.CpuOpsOnAvx2), testClasses);
    }

    private static IEnumerable<MethodInfo> TestMethods(Type type) =>
        type.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Where(m => m.GetCustomAttributes<FactAttribute>(inherit: true).Any());

    /// <summary>
    /// The values of <c>[Trait("Category", value)]</c> among <paramref name="attributes"/> (xunit 2's
    /// <see cref="TraitAttribute"/> keeps its name and value only as constructor arguments).
    /// </summary>
    private static IEnumerable<string> Categories(IEnumerable<CustomAttributeData> attributes) =>
        attributes.Where(a => a.AttributeType == typeof(TraitAttribute) && (string?)a.ConstructorArguments[0].Value == "Category")
            .Select(a => (string)a.ConstructorArguments[1].Value!);
}

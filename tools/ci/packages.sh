#!/usr/bin/env bash
# Package check (issue 11): packs WeakToStrong, WeakToStrong.Extensions.AI and the WeakToStrong.Tool into a
# temporary folder; installs the w2s tool from it into a temporary tool path and runs `w2s info` on a fixture; then
# builds and runs a throw-away console app that references package WeakToStrong from that folder, checks what the
# package holds, and calls the chat client. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
fixture="$root/tests/WeakToStrong.Tests/TestData/fixtures/gpt2-tiny"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A version no earlier run used, so that neither the restore nor the tool install takes a stale copy from the cache.
version="0.1.0-ci.$(date +%s).$$"

dotnet pack WeakToStrong.sln -c Release -o "$work/packages" -p:Version="$version"
for id in WeakToStrong WeakToStrong.Extensions.AI WeakToStrong.Tool; do
    for ext in nupkg snupkg; do
        [ -f "$work/packages/$id.$version.$ext" ] || { echo "missing $id.$version.$ext" >&2; exit 1; }
    done
done
dotnet tool install --tool-path "$work/tools" --add-source "$work/packages" WeakToStrong.Tool --version "$version"
"$work/tools/w2s" info --model "$fixture"

mkdir "$work/app"
cat > "$work/app/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="weaktostrong-ci" value="$work/packages" />
  </packageSources>
</configuration>
EOF
cat > "$work/app/App.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="WeakToStrong" Version="$version" />
  </ItemGroup>
</Project>
EOF
cat > "$work/app/Program.cs" <<'EOF'
using System.IO.Compression;
using Microsoft.Extensions.AI;
using WeakToStrong.ChatClient;
using WeakToStrong.Search;

using (var package = ZipFile.OpenRead(args[1]))
    foreach (var entry in new[] { "README.md", "LICENSE", "lib/net10.0/WeakToStrong.dll", "lib/net10.0/WeakToStrong.xml" })
        if (package.GetEntry(entry) is null) throw new InvalidOperationException($"the WeakToStrong package lacks {entry}");

var kernels = typeof(WeakToStrongSearch).Assembly.GetManifestResourceNames().Count(n => n.StartsWith("kernels/", StringComparison.Ordinal));
if (kernels == 0) throw new InvalidOperationException("the package's WeakToStrong.dll embeds no CUDA kernels");
using var search = WeakToStrongSearch.Load(new SearchModelOptions { LargeDirectory = args[0], TunedDirectory = args[0], UntunedDirectory = args[0] });
var defaults = new SearchRequest { Prompt = "", Chat = true, EosTokenIds = [] };
using IChatClient client = search.AsChatClient(new WeakToStrongChatClientOptions { Defaults = defaults });
var options = new ChatOptions { MaxOutputTokens = 8, Seed = 1, AdditionalProperties = new() { ["w2s.method"] = "cbs", ["w2s.beam_width"] = 2 } };
var response = await client.GetResponseAsync("Hello, world", options);
if (response.Text.Length == 0 || response.AdditionalProperties?["w2s.score"] is not double score)
    throw new InvalidOperationException("the chat client returned no text or no score");
Console.WriteLine($"package app: {kernels} embedded kernel files; chat client replied {response.Text.Length} characters, score {score:F4}");
EOF
dotnet run --project "$work/app" -c Release -- "$fixture" "$work/packages/WeakToStrong.$version.nupkg"
echo "package check passed: WeakToStrong, WeakToStrong.Extensions.AI and WeakToStrong.Tool $version"

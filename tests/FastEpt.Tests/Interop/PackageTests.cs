// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.IO.Compression;
using System.Reflection;
using System.Security;
using FastEpt.Interop;

namespace FastEpt.Tests.Interop
{
    /// <summary>
    /// The packages build.sh packs (artifacts/packages) must work for a consumer who has only
    /// them: a fresh console project references FastEpt.Interop from that folder, restores into
    /// an empty package cache, and translates one page both managed and natively.
    /// </summary>
    /// <remarks>In the README test's collection: a nested build takes both cores of a small machine.</remarks>
    [Collection(ReadmeQuickStartCollection.Name)]
    public sealed class PackageTests
    {

        private const string Program = """
            using FastEpt;
            using FastEpt.Interop;

            using var memory = new HostMemory(64L << 20);
            using var p2m = new P2m(memory);
            ulong ram = memory.AllocateFrame();
            p2m.SetEntry(0x1234, ram, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            ulong gpa = (0x1234UL << 12) | 0x567;
            Console.WriteLine($"expected: Ok hpa=0x{(ram << 12) | 0x567:X} level=1 qual=0x0");
            Console.WriteLine($"managed: {p2m.Translate(gpa, AccessKind.Read | AccessKind.Write)}");
            Console.WriteLine($"native: {new NativeWalker(p2m).Translate(gpa, AccessKind.Read | AccessKind.Write)}");
            Console.WriteLine($"abi: {NativeWalker.AbiVersion}");
            """;

        [Fact]
        [Trait("Category", "Slow")]
        public async Task InteropPackage_ConsumedFromTheLocalFolder_TranslatesManagedAndNative()
        {
            string root = InteropPaths.RepositoryRoot();
            string packages = Path.Combine(root, "artifacts", "packages");
            string version = ExpectedVersion();
            string interopPackage = Path.Combine(packages, $"FastEpt.Interop.{version}.nupkg");
            string walkerPackage = Path.Combine(packages, $"FastEpt.{version}.nupkg");
            string[] present = Directory.Exists(packages) ? Directory.GetFiles(packages, "*.nupkg").Select(f => Path.GetFileName(f)).ToArray() : [];
            Assert.True(File.Exists(interopPackage) && File.Exists(walkerPackage),
                $"Expected FastEpt.{version}.nupkg and FastEpt.Interop.{version}.nupkg in {packages} (found: {(present.Length == 0 ? "none" : string.Join(", ", present))}). " +
                "Pack them first: dotnet pack FastEpt.sln --no-build -c Release -o artifacts/packages (./build.sh test does).");

            using (ZipArchive zip = ZipFile.OpenRead(interopPackage))
            {
                string[] entries = zip.Entries.Select(e => e.FullName).ToArray();
                Assert.Contains("lib/net10.0/FastEpt.Interop.dll", entries);
                Assert.Contains("runtimes/linux-x64/native/libfastept.so", entries);
            }

            string workDir = Path.Combine(Path.GetTempPath(), "fastept-package-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(workDir);
            try
            {
                WriteProject(workDir, packages, version);
                var environment = new Dictionary<string, string>
                {
                    // An empty cache: a stale FastEpt.Interop of the same version cannot stand in.
                    ["NUGET_PACKAGES"] = Path.Combine(workDir, ".packages"),
                };

                (int exitCode, string stdout, string stderr) = await DotnetCli.RunAsync(workDir, environment,
                    ["run", "-c", "Release", "--disable-build-servers", "-p:UseSharedCompilation=false"]);
                Assert.True(exitCode == 0, $"'dotnet run' exited with {exitCode}.\nstdout:\n{stdout}\nstderr:\n{stderr}");

                Dictionary<string, string> lines = stdout.Split('\n')
                    .Select(l => l.Trim())
                    .Where(l => l.Contains(": "))
                    .Select(l => l.Split(": ", 2))
                    .GroupBy(p => p[0])
                    .ToDictionary(g => g.Key, g => g.Last()[1]);
                Assert.True(lines.ContainsKey("expected") && lines.ContainsKey("managed") && lines.ContainsKey("native"), $"Unexpected output:\n{stdout}");
                Assert.Equal(lines["expected"], lines["managed"]);
                Assert.Equal(lines["expected"], lines["native"]);
                Assert.Equal(FastEptNative.FASTEPT_ABI_VERSION.ToString(), lines["abi"]);

                // The native library came out of the package, into the app's runtime assets.
                Assert.True(File.Exists(Path.Combine(workDir, ".packages", "fastept.interop", version, "runtimes", "linux-x64", "native", "libfastept.so")),
                    "FastEpt.Interop was not restored into the isolated package folder.");
                Assert.NotEmpty(Directory.GetFiles(Path.Combine(workDir, "bin"), "libfastept.so", SearchOption.AllDirectories));
            }
            finally
            {
                DotnetCli.TryDeleteDirectory(workDir);
            }
        }

        // The version the packages were built with: this build's FastEpt.Interop assembly's.
        private static string ExpectedVersion()
        {
            string? informational = typeof(NativeWalker).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
            Assert.False(string.IsNullOrEmpty(informational), "FastEpt.Interop has no informational version.");
            int plus = informational!.IndexOf('+');
            return plus < 0 ? informational : informational[..plus];
        }

        private static void WriteProject(string workDir, string packages, string version)
        {
            DotnetCli.WriteConsoleProject(workDir, "PackageConsumer", Program,
                $"""<PackageReference Include="FastEpt.Interop" Version="[{SecurityElement.Escape(version)}]" />""");

            // The local folder for FastEpt's packages, the machine's usual feed for anything else.
            File.WriteAllText(Path.Combine(workDir, "nuget.config"),
                $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="fastept-local" value="{SecurityElement.Escape(packages)}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
                  </packageSources>
                  <packageSourceMapping>
                    <packageSource key="fastept-local">
                      <package pattern="FastEpt" />
                      <package pattern="FastEpt.*" />
                    </packageSource>
                    <packageSource key="nuget.org">
                      <package pattern="*" />
                    </packageSource>
                  </packageSourceMapping>
                </configuration>
                """);
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastEpt.Interop;

namespace FastEpt.Tests.Interop
{
    /// <summary>Paths of the repository and the native build, found from the test's own folder.</summary>
    internal static class InteropPaths
    {
        /// <summary>The folder holding FastEpt.sln, above <see cref="AppContext.BaseDirectory"/>.</summary>
        public static string RepositoryRoot()
        {
            for (DirectoryInfo? dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "FastEpt.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} contains FastEpt.sln.");
        }

        /// <summary>native/build under the repository root.</summary>
        public static string NativeBuildDirectory() => Path.Combine(RepositoryRoot(), "native", "build");
    }

    /// <summary>
    /// The C structs of fastept.h and the generated C# structs must agree byte for byte: the
    /// native layout probe (native/tests/layout.g.c, built as fastept_layout) prints what the C
    /// compiler chose, and every struct and field it prints is compared with the C# layout.
    /// </summary>
    public sealed class LayoutContractTests
    {
        [Fact]
        public void EveryStructAndField_MatchesTheCCompilersLayout()
        {
            string program = Path.Combine(InteropPaths.NativeBuildDirectory(), "fastept_layout");
            Assert.True(File.Exists(program),
                $"{program} does not exist: build native/ first (./build.sh, or cmake -S native -B native/build && cmake --build native/build).");

            (Dictionary<string, ulong> structs, Dictionary<string, List<(string Field, ulong Offset, ulong Size)>> fields) = Parse(Run(program));
            Assert.NotEmpty(structs);

            Assembly interop = typeof(FastEptNative).Assembly;
            var checkedStructs = new HashSet<string>();
            foreach ((string name, ulong size) in structs)
            {
                Type? type = interop.GetType($"FastEpt.Interop.{name}");
                Assert.True(type is not null, $"fastept_layout printed struct {name}, but FastEpt.Interop has no generated type of that name.");
                Assert.True(type!.IsValueType && type.IsLayoutSequential, $"{name} must be a sequential struct.");
                Assert.True(size == (ulong)SizeOf(type), $"sizeof({name}): C {size}, C# {SizeOf(type)}.");
                Assert.True(size == (ulong)Marshal.SizeOf(type), $"sizeof({name}): C {size}, marshalled C# {Marshal.SizeOf(type)}.");

                List<(string Field, ulong Offset, ulong Size)> cFields = fields.GetValueOrDefault(name) ?? new();
                FieldInfo[] csFields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
                Assert.True(cFields.Select(f => f.Field).OrderBy(f => f, StringComparer.Ordinal)
                        .SequenceEqual(csFields.Select(f => f.Name).OrderBy(f => f, StringComparer.Ordinal)),
                    $"{name}: C fields [{string.Join(", ", cFields.Select(f => f.Field))}], C# fields [{string.Join(", ", csFields.Select(f => f.Name))}].");

                foreach ((string field, ulong offset, ulong fieldSize) in cFields)
                {
                    FieldInfo info = csFields.Single(f => f.Name == field);
                    ulong csOffset = (ulong)Marshal.OffsetOf(type, field);
                    Assert.True(offset == csOffset, $"offsetof({name}, {field}): C {offset}, C# {csOffset}.");
                    ulong csSize = (ulong)FieldSize(info);
                    Assert.True(fieldSize == csSize, $"sizeof({name}.{field}): C {fieldSize}, C# {csSize}.");
                }

                checkedStructs.Add(name);
            }

            // The other direction: no generated struct escapes the probe.
            string[] generated = interop.GetTypes()
                .Where(t => t.IsPublic && t.IsValueType && t.Namespace == "FastEpt.Interop" && t.Name.StartsWith("fastept_", StringComparison.Ordinal))
                .Select(t => t.Name)
                .OrderBy(n => n, StringComparer.Ordinal)
                .ToArray();
            Assert.Equal(generated, checkedStructs.OrderBy(n => n, StringComparer.Ordinal).ToArray());
            Assert.Equal(structs.Keys.OrderBy(n => n, StringComparer.Ordinal), checkedStructs.OrderBy(n => n, StringComparer.Ordinal));
            Assert.All(fields.Keys, s => Assert.Contains(s, structs.Keys));
        }

        [Fact]
        public void EptTranslation_IsTheSameSixteenBytesAsFasteptTranslation()
        {
            Assert.Equal(16, Unsafe.SizeOf<EptTranslation>());
            Assert.Equal(16, Unsafe.SizeOf<fastept_translation>());
            Assert.Equal(Marshal.OffsetOf<fastept_translation>(nameof(fastept_translation.hpa)), Marshal.OffsetOf<EptTranslation>("_hpa"));
            Assert.Equal(Marshal.OffsetOf<fastept_translation>(nameof(fastept_translation.qualification)), Marshal.OffsetOf<EptTranslation>("_qualification"));
            Assert.Equal(Marshal.OffsetOf<fastept_translation>(nameof(fastept_translation.status)), Marshal.OffsetOf<EptTranslation>("_status"));
            Assert.Equal(Marshal.OffsetOf<fastept_translation>(nameof(fastept_translation.level)), Marshal.OffsetOf<EptTranslation>("_level"));
            NativeWalker.CheckTranslationLayout();   // the check NativeWalker makes once at load

            EptTranslation[] samples =
            [
                new EptTranslation(EptStatus.Ok, 0x0000_000F_FFFF_FFFF, 1, 0),
                new EptTranslation(EptStatus.Ok, 0x000F_FFFF_C000_1234, 3, 0),
                new EptTranslation(EptStatus.Violation, 0, 4, 0x3F),
                new EptTranslation(EptStatus.Violation, 0, 5, 0x02 | (0x5 << 3)),
                new EptTranslation(EptStatus.Misconfig, 0, 2, 0),
            ];
            foreach (EptTranslation t in samples)
            {
                EptTranslation copy = t;
                fastept_translation n = Unsafe.As<EptTranslation, fastept_translation>(ref copy);
                Assert.Equal(t.Hpa, n.hpa);
                Assert.Equal(t.Qualification, (ulong)n.qualification);
                Assert.Equal((byte)t.Status, n.status);
                Assert.Equal(t.Level, (int)n.level);
                Assert.Equal(0, (int)ReservedByte(ref n, 0));
                Assert.Equal(0, (int)ReservedByte(ref n, 1));

                // And back: the native struct read as the managed one gives the same values.
                EptTranslation back = Unsafe.As<fastept_translation, EptTranslation>(ref n);
                Assert.Equal(t, back);
                Assert.Equal(t.ToString(), back.ToString());
            }
        }

        private static unsafe byte ReservedByte(ref fastept_translation t, int i)
        {
            fixed (fastept_translation* p = &t)
            {
                return p->reserved[i];
            }
        }

        private static int SizeOf(Type type)
            => (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(type).Invoke(null, null)!;

        private static int FieldSize(FieldInfo field)
        {
            if (field.FieldType.IsPointer)
            {
                return IntPtr.Size;
            }

            FixedBufferAttribute? buffer = field.GetCustomAttribute<FixedBufferAttribute>();
            if (buffer is not null)
            {
                return SizeOf(buffer.ElementType) * buffer.Length;
            }

            return SizeOf(field.FieldType);
        }

        private static string Run(string program)
        {
            var startInfo = new ProcessStartInfo(program)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using Process process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {program}.");
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(30_000))
            {
                process.Kill();
                Assert.Fail($"{program} did not finish within 30 s.");
            }

            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"{program} exited with {process.ExitCode}: {stderr.Result}");
            return stdout.Result;
        }

        private static (Dictionary<string, ulong>, Dictionary<string, List<(string, ulong, ulong)>>) Parse(string output)
        {
            var structs = new Dictionary<string, ulong>();
            var fields = new Dictionary<string, List<(string, ulong, ulong)>>();
            foreach (string raw in output.Split('\n'))
            {
                string line = raw.Trim();
                if (line.Length == 0)
                {
                    continue;
                }

                string[] parts = line.Split(' ');
                if (parts[0] == "struct" && parts.Length == 3)
                {
                    Assert.True(structs.TryAdd(parts[1], ulong.Parse(parts[2])), $"struct {parts[1]} printed twice.");
                }
                else if (parts[0] == "field" && parts.Length == 4 && parts[1].Contains('.'))
                {
                    string[] name = parts[1].Split('.', 2);
                    if (!fields.TryGetValue(name[0], out List<(string, ulong, ulong)>? list))
                    {
                        fields[name[0]] = list = new();
                    }

                    list.Add((name[1], ulong.Parse(parts[2]), ulong.Parse(parts[3])));
                }
                else
                {
                    Assert.Fail($"Unexpected line from fastept_layout: '{line}'.");
                }
            }

            return (structs, fields);
        }
    }
}

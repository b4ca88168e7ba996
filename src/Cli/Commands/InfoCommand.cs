// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.CommandLine;
using System.IO;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace FastEpt.Cli.Commands
{
    /// <summary><c>fastept info</c>: the machine, the ISA paths FastEpt can take, and huge-page status.</summary>
    internal static class InfoCommand
    {
        private const string ThpEnabledPath = "/sys/kernel/mm/transparent_hugepage/enabled";
        private const string ThpDefragPath = "/sys/kernel/mm/transparent_hugepage/defrag";

        public static Command Create()
        {
            var command = new Command("info", "Show the machine, the instruction-set paths FastEpt uses, and huge-page status.");
            command.SetAction(parse =>
            {
                Write(parse.InvocationConfiguration.Output);
                return ExitCodes.Ok;
            });
            return command;
        }

        internal static void Write(TextWriter output)
        {
            output.WriteLine("Machine");
            output.WriteLine($"  OS:            {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})");
            output.WriteLine($"  CPU:           {CpuVendor()}, {Environment.ProcessorCount} logical processors ({RuntimeInformation.ProcessArchitecture} process)");
            output.WriteLine($"  .NET:          {RuntimeInformation.FrameworkDescription} ({RuntimeInformation.RuntimeIdentifier})");
            output.WriteLine($"  FastEpt:       {typeof(P2m).Assembly.GetName().Version}");

            output.WriteLine();
            output.WriteLine("Instruction sets (System.Runtime.Intrinsics; DOTNET_EnableHWIntrinsic=0 turns them off)");
            output.WriteLine($"  X86Base {YesNo(X86Base.IsSupported)}  SSE {YesNo(Sse.IsSupported)}  SSE2 {YesNo(Sse2.IsSupported)}  SSE4.1 {YesNo(Sse41.IsSupported)}  SSE4.2 {YesNo(Sse42.IsSupported)}  POPCNT {YesNo(Popcnt.IsSupported)}");
            output.WriteLine($"  AVX {YesNo(Avx.IsSupported)}  AVX2 {YesNo(Avx2.IsSupported)}  AVX-512F {YesNo(Avx512F.IsSupported)}  BMI1 {YesNo(Bmi1.IsSupported)}  BMI2 {YesNo(Bmi2.IsSupported)}  LZCNT {YesNo(Lzcnt.IsSupported)}");
            output.WriteLine($"  Arm AdvSimd {YesNo(AdvSimd.IsSupported)}");
            output.WriteLine($"  Vector128 {Accel(Vector128.IsHardwareAccelerated)}  Vector256 {Accel(Vector256.IsHardwareAccelerated)}  Vector512 {Accel(Vector512.IsHardwareAccelerated)}");

            output.WriteLine();
            output.WriteLine("Batch walker (P2m.TranslateBatch, Auto path)");
            foreach (string line in P2m.DescribeBatchPolicy())
            {
                output.WriteLine("  " + line);
            }

            output.WriteLine();
            output.WriteLine("Host memory (HostMemory)");
            foreach (string line in DescribeHugePages())
            {
                output.WriteLine("  " + line);
            }
        }

        internal static string[] DescribeHugePages()
        {
            if (!OperatingSystem.IsLinux())
            {
                return new[] { "Transparent huge pages: not Linux; regions are plain allocations" };
            }

            string? enabled = ReadSysFile(ThpEnabledPath);
            if (enabled is null)
            {
                return new[] { $"Transparent huge pages: unknown ({ThpEnabledPath} not readable)" };
            }

            string mode = SelectedMode(enabled);
            string effect = mode switch
            {
                "always" => "in use: regions are 2 MiB aligned and get huge pages",
                "madvise" => "in use: regions are 2 MiB aligned and madvise(MADV_HUGEPAGE)d",
                "never" => "off: tables use 4 KiB pages (more TLB misses on large guests)",
                _ => "unrecognized mode",
            };
            string? defrag = ReadSysFile(ThpDefragPath);
            return new[]
            {
                $"Transparent huge pages: {mode} [{enabled}] -> {effect}",
                $"THP defrag:    {(defrag is null ? "unknown" : SelectedMode(defrag) + " [" + defrag + "]")}",
            };
        }

        // sysfs marks the selected choice with brackets: "always [madvise] never".
        internal static string SelectedMode(string sysfsValue)
        {
            int open = sysfsValue.IndexOf('[', StringComparison.Ordinal);
            int close = open >= 0 ? sysfsValue.IndexOf(']', open + 1) : -1;
            return close > open + 1 ? sysfsValue.Substring(open + 1, close - open - 1) : sysfsValue.Trim();
        }

        private static string? ReadSysFile(string path)
        {
            try
            {
                return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
            }
            catch (IOException)
            {
                return null;
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }

        private static string CpuVendor()
        {
            if (!X86Base.IsSupported)
            {
                return RuntimeInformation.ProcessArchitecture.ToString();
            }

            (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
            Span<byte> vendor = stackalloc byte[12];
            BitConverter.TryWriteBytes(vendor, ebx);
            BitConverter.TryWriteBytes(vendor.Slice(4), edx);
            BitConverter.TryWriteBytes(vendor.Slice(8), ecx);
            return System.Text.Encoding.ASCII.GetString(vendor);
        }

        private static string YesNo(bool value) => value ? "yes" : "no";

        private static string Accel(bool value) => value ? "accelerated" : "software";
    }
}

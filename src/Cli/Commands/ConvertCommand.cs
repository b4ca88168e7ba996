// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Commands
{
    /// <summary><c>fastept convert INPUT OUTPUT [--format auto|lackey|din]</c>: any trace to the binary format.</summary>
    internal static class ConvertCommand
    {
        private const int ChunkAccesses = 64 * 1024;

        public static Command Create()
        {
            var input = new Argument<string>("INPUT") { Description = "The trace to read (lackey, din or binary)." };
            var output = new Argument<string>("OUTPUT") { Description = "The FastEpt binary trace to write (overwritten)." };
            Option<TraceFormat> format = CommandHelpers.CreateFormatOption();
            var command = new Command("convert", "Convert a lackey or din trace to the FastEpt binary trace format (fast to replay).")
            {
                input,
                output,
                format,
            };
            command.SetAction(parse =>
            {
                TextWriter stdout = parse.InvocationConfiguration.Output;
                TextWriter stderr = parse.InvocationConfiguration.Error;
                return CommandHelpers.RunGuarded(stderr, () => Convert(parse.GetRequiredValue(input), parse.GetRequiredValue(output), parse.GetValue(format), stdout, stderr));
            });
            return command;
        }

        internal static int Convert(string inputPath, string outputPath, TraceFormat format, TextWriter stdout, TextWriter stderr)
        {
            if (!File.Exists(inputPath))
            {
                stderr.WriteLine($"fastept: input trace not found: {inputPath}");
                return ExitCodes.InputError;
            }

            if (string.Equals(Path.GetFullPath(inputPath), Path.GetFullPath(outputPath), StringComparison.Ordinal))
            {
                stderr.WriteLine("fastept: OUTPUT must differ from INPUT.");
                return ExitCodes.UsageError;
            }

            TraceFormat detected = format;
            if (format == TraceFormat.Auto)
            {
                using FileStream probe = File.OpenRead(inputPath);
                detected = TraceReaders.DetectFormat(probe);
            }

            using ITraceReader reader = TraceReaders.Open(inputPath, detected);
            long accesses;
            using (var writer = new BinaryTraceWriter(new FileStream(outputPath, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0)))
            {
                var chunk = new TraceAccess[ChunkAccesses];
                int n;
                while ((n = reader.Read(chunk)) > 0)
                {
                    writer.Write(chunk.AsSpan(0, n));
                }

                accesses = writer.Count;
            }

            CultureInfo inv = CultureInfo.InvariantCulture;
            stdout.WriteLine($"Converted {inputPath} ({detected.ToString().ToLowerInvariant()}) to {outputPath} (binary)");
            stdout.WriteLine(string.Create(inv, $"  lines read:       {reader.LinesRead:N0}"));
            stdout.WriteLine(string.Create(inv, $"  accesses written: {accesses:N0}"));
            if (reader is TextTraceReader text)
            {
                stdout.WriteLine(string.Create(inv, $"  skipped lines:    {text.SkippedCount:N0} (banners, blanks, non-access labels)"));
            }

            CommandHelpers.WriteMalformed(stdout, reader);
            if (reader.MalformedCount == 0)
            {
                stdout.WriteLine("  malformed:        0");
            }

            return ExitCodes.Ok;
        }
    }
}

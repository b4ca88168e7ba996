// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.IO;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Commands
{
    /// <summary>Exit codes shared by every command.</summary>
    internal static class ExitCodes
    {
        public const int Ok = 0;
        public const int InputError = 1;
        public const int UsageError = 2;
        public const int Cancelled = 130;
    }

    /// <summary>Option parsing and error reporting shared by the commands.</summary>
    internal static class CommandHelpers
    {
        /// <summary>
        /// Parses a byte count: decimal digits with an optional binary suffix K, M, G or T
        /// (case-insensitive, optionally followed by <c>B</c> or <c>iB</c>): <c>4G</c> = 4 GiB.
        /// </summary>
        public static bool TryParseSize(string? text, out long bytes)
        {
            bytes = 0;
            if (string.IsNullOrWhiteSpace(text))
            {
                return false;
            }

            ReadOnlySpan<char> s = text.AsSpan().Trim();
            if (s.EndsWith("iB", StringComparison.OrdinalIgnoreCase))
            {
                s = s.Slice(0, s.Length - 2);
            }
            else if (s.Length > 1 && (s[^1] == 'B' || s[^1] == 'b') && char.IsLetter(s[^2]))
            {
                s = s.Slice(0, s.Length - 1);
            }

            int shift = 0;
            if (s.Length > 0)
            {
                switch (char.ToUpperInvariant(s[^1]))
                {
                    case 'K': shift = 10; break;
                    case 'M': shift = 20; break;
                    case 'G': shift = 30; break;
                    case 'T': shift = 40; break;
                }
            }

            if (shift != 0)
            {
                s = s.Slice(0, s.Length - 1);
            }

            if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value <= 0 || value > (long.MaxValue >> shift))
            {
                return false;
            }

            bytes = value << shift;
            return true;
        }

        /// <summary>The text an option was given, or <paramref name="absent"/> when it was given none.</summary>
        public static string Token(ArgumentResult result, string absent)
        {
            return result.Tokens.Count > 0 ? result.Tokens[0].Value : absent;
        }

        /// <summary>A <c>--format</c> option (auto, lackey, din, binary).</summary>
        public static Option<TraceFormat> CreateFormatOption()
        {
            return new Option<TraceFormat>("--format", "-f")
            {
                Description = "Trace format: auto (default), lackey, din or binary.",
                DefaultValueFactory = _ => TraceFormat.Auto,
                CustomParser = ParseFormat,
            };
        }

        private static TraceFormat ParseFormat(ArgumentResult result)
        {
            string text = Token(result, "auto");
            switch (text.ToLowerInvariant())
            {
                case "auto":
                    return TraceFormat.Auto;
                case "lackey":
                    return TraceFormat.Lackey;
                case "din":
                    return TraceFormat.Din;
                case "binary":
                case "fept":
                    return TraceFormat.Binary;
                default:
                    result.AddError($"Unknown trace format '{text}' (expected auto, lackey, din or binary).");
                    return TraceFormat.Auto;
            }
        }

        /// <summary>Prints the malformed-line count and the first few kept.</summary>
        public static void WriteMalformed(TextWriter output, ITraceReader reader)
        {
            if (reader.MalformedCount == 0)
            {
                return;
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  malformed:        {reader.MalformedCount:N0} (first {reader.FirstMalformed.Count} below)"));
            foreach (MalformedLine bad in reader.FirstMalformed)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    line {bad.LineNumber}: {bad.Reason}: \"{bad.Text}\""));
            }
        }

        /// <summary>
        /// Runs <paramref name="body"/>, turning input failures (missing or unreadable files) into
        /// a one-line message on <paramref name="error"/> and exit code 1, with no stack trace.
        /// </summary>
        public static int RunGuarded(TextWriter error, Func<int> body)
        {
            try
            {
                return body();
            }
            catch (FileNotFoundException e)
            {
                error.WriteLine($"fastept: file not found: {e.FileName ?? e.Message}");
            }
            catch (DirectoryNotFoundException e)
            {
                error.WriteLine($"fastept: {e.Message}");
            }
            catch (UnauthorizedAccessException e)
            {
                error.WriteLine($"fastept: {e.Message}");
            }
            catch (IOException e)
            {
                error.WriteLine($"fastept: {e.Message}");
            }

            return ExitCodes.InputError;
        }
    }
}

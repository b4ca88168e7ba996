// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.IO;
using System.Threading;
using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;
using Spectre.Console;

namespace FastEpt.Cli.Commands
{
    /// <summary>
    /// <c>fastept replay TRACE [--guest 4G] [--pages 4k|2m|1g|mixed] [--tlb 256] [--batch N]
    /// [--views N] [--view-access rwx] [--report DIR] [--format ...]</c>, or <c>fastept replay --sample</c> for the
    /// lackey trace shipped next to the tool (<c>Samples/sample.lackey</c>).
    /// </summary>
    internal static class ReplayCommand
    {
        /// <summary>The sample trace's path relative to the tool's directory.</summary>
        internal const string SampleRelativePath = "Samples/sample.lackey";

        internal const long DefaultGuestBytes = 4L << 30;
        internal const int DefaultTlbEntries = 256;
        internal const int DefaultBatch = 0;
        internal const int DefaultViews = 1;
        internal const int PlainWidth = 132;

        public static Command Create()
        {
            var trace = new Argument<string?>("TRACE")
            {
                Description = "The trace to replay (lackey, din or FastEpt binary); omit with --sample.",
                Arity = ArgumentArity.ZeroOrOne,
            };
            var sample = new Option<bool>("--sample") { Description = $"Replay the sample lackey trace shipped with fastept ({SampleRelativePath})." };
            var guest = new Option<long>("--guest", "-g")
            {
                Description = "Guest-physical memory to map, with K/M/G/T suffixes (default 4G).",
                DefaultValueFactory = _ => DefaultGuestBytes,
                CustomParser = ParseGuest,
            };
            var pages = new Option<PageMode>("--pages", "-p")
            {
                Description = "Page size the guest is mapped with: 4k (default), 2m, 1g or mixed.",
                DefaultValueFactory = _ => PageMode.Size4K,
                CustomParser = ParsePages,
            };
            Option<int> tlb = CreateCountOption("--tlb", "Soft TLB entries per vCPU (default 256; 0 = no TLB).", DefaultTlbEntries, minimum: 0);
            Option<int> batch = CreateCountOption("--batch", "Translate N accesses per TranslateBatch call, grouped by view and kind (default 0: one Translate per access).", DefaultBatch, minimum: 0);
            Option<int> views = CreateCountOption("--views", "Views to spread the accesses over, round-robin, one vCPU each: the host p2m plus N-1 altp2m views filled lazily on fault (default 1: the host only).", DefaultViews, minimum: 1);
            var viewAccess = new Option<P2mAccess>("--view-access")
            {
                Description = "Default access of the altp2m views: rwx (default), rx, r, n, rw, x, wx, w, rx2rw, n2rwx or r_pw. Accesses it forbids are EPT violations that the domain resolves as Xen does with no mem_access listener.",
                DefaultValueFactory = _ => P2mAccess.RWX,
                CustomParser = ParseAccess,
            };
            var report = new Option<string?>("--report", "-o") { Description = "Also write the report files into this directory." };
            Option<TraceFormat> format = CommandHelpers.CreateFormatOption();

            var command = new Command("replay", "Replay a memory-access trace through the FastEpt walker and report translation costs and hot paths.")
            {
                trace,
                sample,
                guest,
                pages,
                tlb,
                batch,
                views,
                viewAccess,
                report,
                format,
            };
            command.SetAction(parse =>
            {
                TextWriter stdout = parse.InvocationConfiguration.Output;
                TextWriter stderr = parse.InvocationConfiguration.Error;
                string? tracePath = parse.GetValue(trace);
                bool useSample = parse.GetValue(sample);
                if (tracePath is null == !useSample)
                {
                    stderr.WriteLine(useSample ? "fastept: give either TRACE or --sample, not both." : "fastept: replay needs a TRACE (or --sample).");
                    return ExitCodes.UsageError;
                }

                var options = new ReplayOptions
                {
                    GuestBytes = parse.GetValue(guest),
                    Pages = parse.GetValue(pages),
                    TlbEntries = parse.GetValue(tlb),
                    Batch = parse.GetValue(batch),
                    Views = parse.GetValue(views) - 1,      // the engine counts alternate views beside the host p2m
                    ViewAccess = parse.GetValue(viewAccess),
                };
                string path = tracePath ?? Path.Combine(AppContext.BaseDirectory, SampleRelativePath);
                return CommandHelpers.RunGuarded(stderr, () => Replay(path, parse.GetValue(format), options, parse.GetValue(report), stdout, stderr));
            });
            return command;
        }

        internal static int Replay(string path, TraceFormat format, ReplayOptions options, string? reportDirectory, TextWriter stdout, TextWriter stderr)
        {
            if (!File.Exists(path))
            {
                stderr.WriteLine($"fastept: trace not found: {path}");
                return ExitCodes.InputError;
            }

            using ITraceReader reader = TraceReaders.Open(path, format);
            IAnsiConsole console = CreateConsole(stdout, out bool interactive);
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            ReplayReport result;
            try
            {
                result = interactive
                    ? RunWithProgress(console, reader, options, cancel.Token)
                    : Replayer.Run(reader, options, null, cancel.Token);
            }
            catch (OperationCanceledException)
            {
                stderr.WriteLine("fastept: replay cancelled.");
                return ExitCodes.Cancelled;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }

            ReportPrinter.Print(result, console);
            if (reader.MalformedCount > 0)
            {
                stdout.WriteLine();
                stdout.WriteLine($"Trace {path}:");
                CommandHelpers.WriteMalformed(stdout, reader);
            }

            if (reportDirectory is not null)
            {
                IReadOnlyList<string> files = ReportWriter.WriteFiles(result, reportDirectory);
                foreach (string file in files)
                {
                    stdout.WriteLine($"wrote {file}");
                }
            }

            return ExitCodes.Ok;
        }

        // The live progress bar only where a person watches: stdout is the real, unredirected
        // console and Spectre sees an interactive terminal. Otherwise output stays plain.
        private static IAnsiConsole CreateConsole(TextWriter stdout, out bool interactive)
        {
            interactive = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
            if (interactive)
            {
                return AnsiConsole.Console;
            }

            IAnsiConsole plain = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            });
            plain.Profile.Width = PlainWidth;    // files and pipes have no width: keep the widest table unwrapped
            return plain;
        }

        private static ReplayReport RunWithProgress(IAnsiConsole console, ITraceReader reader, ReplayOptions options, CancellationToken cancellationToken)
        {
            return console.Progress()
                .AutoClear(true)
                .HideCompleted(true)
                .Columns(
                    new TaskDescriptionColumn(),
                    new ProgressBarColumn(),
                    new PercentageColumn(),
                    new ElapsedTimeColumn(),
                    new RemainingTimeColumn(),
                    new SpinnerColumn())
                .Start(context =>
                {
                    ProgressTask task = context.AddTask("replaying", maxValue: 1);
                    ReplayReport result = Replayer.Run(reader, options, p =>
                    {
                        if (p.BytesTotal > 0)
                        {
                            task.MaxValue = p.BytesTotal;
                            task.Value = Math.Min(p.BytesDone, p.BytesTotal);
                        }
                        else
                        {
                            task.IsIndeterminate = true;
                        }

                        task.Description = $"{p.Accesses:N0} accesses, {p.AccessesPerSecond / 1e6:F1} M/s";
                    }, cancellationToken);
                    task.Value = task.MaxValue;
                    return result;
                });
        }

        // An integer option with a floor; bad text or a value below the floor is a usage error.
        private static Option<int> CreateCountOption(string name, string description, int defaultValue, int minimum)
        {
            return new Option<int>(name)
            {
                Description = description,
                DefaultValueFactory = _ => defaultValue,
                CustomParser = result =>
                {
                    string text = CommandHelpers.Token(result, string.Empty);
                    if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < minimum)
                    {
                        result.AddError($"{name} must be an integer >= {minimum} (got '{text}').");
                        return defaultValue;
                    }

                    return value;
                },
            };
        }

        private static P2mAccess ParseAccess(ArgumentResult result)
        {
            string text = CommandHelpers.Token(result, string.Empty);
            if (text.Length == 0 || !char.IsLetter(text[0]) || !Enum.TryParse(text, ignoreCase: true, out P2mAccess access) || !Enum.IsDefined(access))
            {
                result.AddError($"--view-access must be one of rwx, rx, r, n, rw, x, wx, w, rx2rw, n2rwx, r_pw (got '{text}').");
                return P2mAccess.RWX;
            }

            return access;
        }

        private static long ParseGuest(ArgumentResult result)
        {
            string text = CommandHelpers.Token(result, string.Empty);
            if (!CommandHelpers.TryParseSize(text, out long bytes) || (bytes & 4095) != 0)
            {
                result.AddError($"Bad --guest size '{text}': expected a positive multiple of 4K, like 512M or 4G.");
                return DefaultGuestBytes;
            }

            return bytes;
        }

        private static PageMode ParsePages(ArgumentResult result)
        {
            string text = CommandHelpers.Token(result, "4k");
            switch (text.ToLowerInvariant())
            {
                case "4k":
                    return PageMode.Size4K;
                case "2m":
                    return PageMode.Size2M;
                case "1g":
                    return PageMode.Size1G;
                case "mixed":
                    return PageMode.Mixed;
                default:
                    result.AddError($"Bad --pages '{text}': expected 4k, 2m, 1g or mixed.");
                    return PageMode.Size4K;
            }
        }
    }
}

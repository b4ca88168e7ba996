// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.IO;
using FastEpt.Cli.Commands;

namespace FastEpt.Cli
{
    /// <summary>
    /// The <c>fastept</c> command line: <c>replay</c>, <c>convert</c>, <c>info</c> and <c>bench</c>.
    /// Exit codes: 0 success, 1 input errors (missing or unreadable files), 2 usage errors.
    /// </summary>
    public static class Program
    {
        /// <summary>Runs the command line on the process console.</summary>
        public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

        /// <summary>Runs the command line with <paramref name="output"/> and <paramref name="error"/> as stdout and stderr (tests use this).</summary>
        internal static int Run(string[] args, TextWriter output, TextWriter error)
        {
            ArgumentNullException.ThrowIfNull(args);
            RootCommand root = CreateRootCommand();
            ParseResult parse = root.Parse(args);
            if (parse.Errors.Count > 0)
            {
                foreach (ParseError parseError in parse.Errors)
                {
                    error.WriteLine($"fastept: {parseError.Message}");
                }

                error.WriteLine("Run 'fastept --help' for usage.");
                return ExitCodes.UsageError;
            }

            return parse.Invoke(new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = true,
            });
        }

        internal static RootCommand CreateRootCommand()
        {
            return new RootCommand("fastept: replay memory-access traces (valgrind lackey, Dinero din, FastEpt binary) through the FastEpt EPT walker.")
            {
                ReplayCommand.Create(),
                ConvertCommand.Create(),
                InfoCommand.Create(),
                BenchCommand.Create(),
            };
        }
    }
}

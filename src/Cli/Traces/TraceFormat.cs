// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Cli.Traces
{
    /// <summary>The on-disk shape of a trace.</summary>
    public enum TraceFormat
    {
        /// <summary>Detect it: the FastEpt binary magic, else the shape of the first content line.</summary>
        Auto,

        /// <summary>valgrind <c>--tool=lackey --trace-mem=yes</c> text (<see cref="LackeyTraceReader"/>).</summary>
        Lackey,

        /// <summary>Dinero "din" text: <c>label address [size]</c> (<see cref="DinTraceReader"/>).</summary>
        Din,

        /// <summary>The FastEpt binary trace (<see cref="BinaryTraceFormat"/>).</summary>
        Binary,
    }
}

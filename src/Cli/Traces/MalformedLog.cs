// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;

namespace FastEpt.Cli.Traces
{
    /// <summary>Counts malformed lines and keeps the first <see cref="Kept"/> of them, printable.</summary>
    internal sealed class MalformedLog
    {
        /// <summary>How many malformed lines are kept with their text.</summary>
        public const int Kept = 10;

        /// <summary>The longest text kept for one malformed line.</summary>
        public const int MaxTextLength = 200;

        private readonly List<MalformedLine> _first = new List<MalformedLine>(Kept);

        public long Count { get; private set; }

        public IReadOnlyList<MalformedLine> First => _first;

        public void Add(long lineNumber, ReadOnlySpan<byte> text, string reason)
        {
            Count++;
            if (_first.Count < Kept)
            {
                _first.Add(new MalformedLine(lineNumber, ToPrintable(text), reason));
            }
        }

        // Latin-1 decode, with control and non-ASCII bytes shown as '?' so a garbage line cannot
        // upset the terminal it is printed on.
        private static string ToPrintable(ReadOnlySpan<byte> text)
        {
            int length = Math.Min(text.Length, MaxTextLength);
            return string.Create(length, text.Slice(0, length).ToArray(), static (chars, bytes) =>
            {
                for (int i = 0; i < chars.Length; i++)
                {
                    byte b = bytes[i];
                    chars[i] = b is >= 0x20 and < 0x7F or (byte)'\t' ? (char)b : '?';
                }
            });
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.IO;

namespace FastEpt.Cli.Traces
{
    /// <summary>The readers' shared buffer refill: unread bytes <c>[start, end)</c> move to the front, then the stream tops the buffer up.</summary>
    internal static class StreamRefill
    {
        /// <summary>Compacts and reads once; sets <paramref name="eof"/> when the stream returned nothing.</summary>
        public static void Fill(Stream stream, byte[] buffer, ref int start, ref int end, ref bool eof)
        {
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }

            int read = stream.Read(buffer, end, buffer.Length - end);
            if (read == 0)
            {
                eof = true;
            }
            else
            {
                end += read;
            }
        }
    }
}

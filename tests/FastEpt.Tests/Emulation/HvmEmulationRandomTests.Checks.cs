// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using Xunit.Sdk;

namespace FastEpt.Tests.Emulation
{
    public sealed partial class HvmEmulationRandomTests
    {
        private sealed partial class Harness
        {
            private void CheckResults(bool rerun)
            {
                string when = rerun ? "re-run after success: " : string.Empty;
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    int n = op.Size;
                    if (op.Kind == OpKind.Read || (op.Kind == OpKind.CmpXchg && op.UseCurrent))
                    {
                        ReadOnlySpan<byte> got = op.Buffer.AsSpan(0, n);
                        if (!got.SequenceEqual(op.Reference.AsSpan(0, n)))
                        {
                            Fail($"{when}operand {k} ({op.Kind}) {(op.Kind == OpKind.Read ? "read" : "found")} {Hex(got)}, the one-pass reference {Hex(op.Reference.AsSpan(0, n))}");
                        }
                    }

                    if (op.Kind == OpKind.CmpXchg && op.Success != op.RefSuccess)
                    {
                        Fail($"{when}operand {k} CmpXchg: LastCompareSucceeded {op.Success}, the one-pass reference {op.RefSuccess}");
                    }

                    if (!rerun && op.Kind == OpKind.CmpXchg)
                    {
                        if (!op.AllRam)
                        {
                            _cmpxchgDegraded++;
                        }
                        else if (op.RefSuccess && !op.Expected.AsSpan(0, n).SequenceEqual(op.Data.AsSpan(0, n)))
                        {
                            _cmpxchgSucceeded++;
                        }
                    }
                }
            }

            // The device saw exactly the chunk sequence of docs/model/mmio-cache.md §6.3 for each operand's MMIO
            // pieces, in operand order, each byte once; every Retry was re-issued unchanged next.
            private void CheckDeviceLog()
            {
                Span<int> sizes = stackalloc int[16];
                _expectedChunks.Clear();
                Array.Clear(_seen);
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    if (op.HasMmio)
                    {
                        _mmioOps++;
                    }

                    if (op.PieceCount == 2 && op.HasMmio)
                    {
                        _crossingOps++;
                    }

                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        if (!op.PieceMmio[p])
                        {
                            continue;
                        }

                        ulong gpa = ((WindowGfn + (ulong)op.PieceWin[p]) << 12) + (ulong)op.PieceOff[p];
                        int device = _owner[op.PieceWin[p]]!.Id;
                        int count = Chunks(op.PieceLen[p], sizes);
                        int at = 0;
                        for (int c = 0; c < count; c++)
                        {
                            int n = sizes[c];
                            ulong value = op.IsWrite ? Little(op.Data.AsSpan(op.PieceStart[p] + at, n)) : 0;
                            _expectedChunks.Add(new Request(k, device, gpa + (ulong)at, n, op.IsWrite, value, false));
                            at += n;
                        }
                    }
                }

                int done = 0;
                for (int t = 0; t < _log.Count; t++)
                {
                    Request q = _log[t];
                    _requests++;
                    if (q.Retried)
                    {
                        _retries++;
                        if (t + 1 >= _log.Count || !SameRequest(q, _log[t + 1]))
                        {
                            Fail($"device request #{t} {Show(q)} answered Retry was not re-issued next (next: {(t + 1 < _log.Count ? Show(_log[t + 1]) : "none")})");
                        }

                        continue;
                    }

                    CountBytes(q, t);
                    if (done >= _expectedChunks.Count || !SameRequest(q, _expectedChunks[done]))
                    {
                        Fail($"completed device request #{t} {Show(q)}; expected {(done < _expectedChunks.Count ? Show(_expectedChunks[done]) : "no more requests")}");
                    }

                    done++;
                }

                if (done != _expectedChunks.Count)
                {
                    Fail($"the device completed {done} requests, expected {_expectedChunks.Count}; first missing {Show(_expectedChunks[done])}");
                }

                // An asynchronous device model (docs/model/mmio-cache.md §6.8): each re-execution replays what is
                // finished and issues exactly one new request, which is answered Retry again.
                if (_retryRate == Asynchronous && (_log.Count != 2 * done || _pass != done + 1))
                {
                    Fail($"asynchronous device: {_log.Count} requests and {_pass} passes for {done} completed requests, expected {2 * done} and {done + 1}");
                }

                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        for (int b = op.PieceStart[p]; b < op.PieceStart[p] + op.PieceLen[p]; b++)
                        {
                            int want = op.PieceMmio[p] ? 1 : 0;
                            if (_seen[k, b] != want)
                            {
                                Fail($"operand {k} byte {b} ({(op.PieceMmio[p] ? "MMIO" : "RAM")}) was seen by the device {_seen[k, b]} times over {_pass} passes, expected {want}");
                            }
                        }
                    }
                }
            }

            private void CountBytes(Request q, int t)
            {
                Operand op = _ops[q.Op];
                int win = (int)((q.Gpa >> 12) - WindowGfn);
                int offset = (int)(q.Gpa & 0xFFF);
                for (int p = 0; p < op.PieceCount; p++)
                {
                    if (op.PieceMmio[p] && op.PieceWin[p] == win && offset >= op.PieceOff[p] && offset + q.Size <= op.PieceOff[p] + op.PieceLen[p])
                    {
                        for (int b = 0; b < q.Size; b++)
                        {
                            _seen[q.Op, op.PieceStart[p] + offset - op.PieceOff[p] + b]++;
                        }

                        return;
                    }
                }

                Fail($"device request #{t} {Show(q)} lies outside the MMIO bytes of operand {q.Op}");
            }

            private static bool SameRequest(Request a, Request b)
                => a.Op == b.Op && a.Device == b.Device && a.Gpa == b.Gpa && a.Size == b.Size && a.Write == b.Write
                   && (!a.Write || (a.Value & Mask(a.Size)) == (b.Value & Mask(b.Size)));

            // One entry per MMIO operand, keyed by its starting address: skip = first MMIO byte,
            // size = one past the last.
            private void CheckCache(HvmEmulation emu)
            {
                int mmioOps = 0;
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    AccessTag tag = op.Kind == OpKind.CmpXchg ? AccessTag.Operand : op.Tag;
                    bool present = emu.TryGetCacheEntry(op.Gla, op.IsWrite, tag, out int skip, out int size);
                    if (!op.HasMmio)
                    {
                        if (present)
                        {
                            Fail($"operand {k} touches no MMIO but has a cache entry (skip {skip}, size {size})");
                        }

                        continue;
                    }

                    mmioOps++;
                    int wantSkip = op.PieceMmio[0] ? 0 : op.PieceLen[0];
                    int wantSize = op.PieceCount == 2 && op.PieceMmio[1] ? op.Size : op.PieceLen[0];
                    if (!present || skip != wantSkip || size != wantSize)
                    {
                        Fail($"operand {k}: cache entry {(present ? $"skip {skip} size {size}" : "missing")}, expected skip {wantSkip} size {wantSize}");
                    }
                }

                if (emu.CacheEntriesInUse != mmioOps)
                {
                    Fail($"{emu.CacheEntriesInUse} cache entries in use, expected {mmioOps} (one per MMIO operand)");
                }
            }

            // The bytes around every operand piece, in RAM or the device, equal the model.
            private void CheckMemory()
            {
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        int from = Math.Max(0, op.PieceOff[p] - 64), to = Math.Min(4096, op.PieceOff[p] + op.PieceLen[p] + 64);
                        ComparePage(op.PieceWin[p], from, to);
                        int refs = _memory.ReferenceCount(_ramMfn + (ulong)op.PieceWin[p]);
                        if (refs != 0)
                        {
                            Fail($"operand {k} piece {p}: the frame of window page {op.PieceWin[p]} still holds {refs} page reference(s)");
                        }
                    }
                }
            }

            private void CheckWholeWindow()
            {
                for (int w = 0; w < WindowPages; w++)
                {
                    ComparePage(w, 0, 4096);
                }
            }

            private void ComparePage(int win, int from, int to)
            {
                ReadOnlySpan<byte> want = _model.AsSpan((win * 4096) + from, to - from);
                ReadOnlySpan<byte> got = _isMmio[win]
                    ? _deviceStore.AsSpan((win * 4096) + from, to - from)
                    : _memory.Frame(_ramMfn + (ulong)win).Slice(from, to - from);
                if (!got.SequenceEqual(want))
                {
                    int at = 0;
                    while (got[at] == want[at])
                    {
                        at++;
                    }

                    ulong gpa = ((WindowGfn + (ulong)win) << 12) + (ulong)(from + at);
                    int len = Math.Min(16, want.Length - at);
                    Fail($"{(_isMmio[win] ? "device" : "RAM")} bytes at GPA 0x{gpa:X}: {Hex(got.Slice(at, len))}, the one-pass reference {Hex(want.Slice(at, len))}");
                }
            }

            // A re-run reproduces the results only when no operand's RAM input is changed by a
            // later operand and no all-RAM exchange changed its own bytes.
            private bool RerunSafe()
            {
                for (int j = 0; j < _opCount; j++)
                {
                    Operand op = _ops[j];
                    if (op.Kind == OpKind.CmpXchg && op.AllRam && op.RefSuccess && !op.Expected.AsSpan(0, op.Size).SequenceEqual(op.Data.AsSpan(0, op.Size)))
                    {
                        return false;
                    }

                    for (int i = 0; i < j; i++)
                    {
                        if (op.IsWrite && _ops[i].ReadsRam && RamOverlap(_ops[i], op))
                        {
                            return false;
                        }
                    }
                }

                return true;
            }

            // The page-crossing phase: an 8-byte MMIO operand at page offset o (0xFF9..0xFFF) of
            // page P, continuing on page Q of another device, is split (4096 - o) + (o - 4088)
            // bytes; e.g. o = 0xFFA: 4 at P+0xFFA, 2 at P+0xFFE, 2 at Q+0 (docs/model/mmio-cache.md §6.8).
            private void CheckPageCrossingLiterally()
            {
                int t = 0;
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    int first = 4096 - op.PieceOff[0];
                    int[] sizes = first switch
                    {
                        1 => [1, 4, 2, 1],
                        2 => [2, 4, 2],
                        3 => [2, 1, 4, 1],
                        4 => [4, 4],
                        5 => [4, 1, 2, 1],
                        6 => [4, 2, 2],
                        _ => [4, 2, 1, 1],
                    };
                    ulong p = ((WindowGfn + (ulong)op.PieceWin[0]) << 12) + (ulong)op.PieceOff[0];
                    ulong q = (WindowGfn + (ulong)op.PieceWin[1]) << 12;
                    int at = 0;
                    foreach (int n in sizes)
                    {
                        while (_log[t].Retried)
                        {
                            t++;
                        }

                        Request r = _log[t++];
                        ulong gpa = at < first ? p + (ulong)at : q + (ulong)(at - first);
                        int device = _owner[op.PieceWin[at < first ? 0 : 1]]!.Id;
                        if (r.Op != k || r.Gpa != gpa || r.Size != n || r.Device != device || _owner[op.PieceWin[0]] == _owner[op.PieceWin[1]])
                        {
                            Fail($"page-crossing operand {k} at offset 0x{op.PieceOff[0]:X}: request {Show(r)}, expected {n} bytes at 0x{gpa:X} on device {device}");
                        }

                        at += n;
                    }
                }
            }

            // ---- helpers ---------------------------------------------------------------------

            private static ulong Little(ReadOnlySpan<byte> bytes)
            {
                Span<byte> v = stackalloc byte[8];
                v.Clear();
                bytes.CopyTo(v);
                return BinaryPrimitives.ReadUInt64LittleEndian(v);
            }

            private static ulong Mask(int size) => size == 8 ? ~0UL : (1UL << (8 * size)) - 1;

            private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

            private static string Show(Request q)
                => $"[op {q.Op} dev {q.Device} {(q.Write ? "write" : "read")} {q.Size} @0x{q.Gpa:X}{(q.Write ? $" = 0x{q.Value & Mask(q.Size):X}" : string.Empty)}{(q.Retried ? " RETRY" : string.Empty)}]";

            [DoesNotReturn]
            private void Fail(string what)
            {
                var sb = new StringBuilder();
                sb.Append($"seed 0x{_seed:X}, layout {_layout}, instruction {_instruction} (pass {_pass}): {what}\n");
                sb.Append($"mode {(_longMode ? "LongMode4" : "Flat")}, linear base 0x{_linBase:X}, retry rate {(_retryRate == Asynchronous ? "asynchronous" : _retryRate.ToString(CultureInfo.InvariantCulture))}, HvmEmulation({_cacheEntries} entries, {_entryBytes} bytes)\n");
                sb.Append("window (GFN 0x40..): ");
                for (int w = 0; w < WindowPages; w++)
                {
                    sb.Append(_isMmio[w] ? $"M{_owner[w]!.Id} " : "R ");
                }

                sb.Append('\n');
                if (_longMode)
                {
                    sb.Append("linear page -> window page: ");
                    for (int j = 0; j < _linPages; j++)
                    {
                        sb.Append($"{j}->{_linToWin[j]} ");
                    }

                    sb.Append('\n');
                }

                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    sb.Append($"op {k}: {op.Kind} {op.Size} bytes at 0x{op.Gla:X} tag {op.Tag} pfec {op.Pfec}{(op.UseCurrent && op.Kind == OpKind.CmpXchg ? " (current)" : string.Empty)};");
                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        ulong gpa = ((WindowGfn + (ulong)op.PieceWin[p]) << 12) + (ulong)op.PieceOff[p];
                        sb.Append($" [{op.PieceLen[p]} @0x{gpa:X} {(op.PieceMmio[p] ? $"MMIO dev {_owner[op.PieceWin[p]]!.Id}" : "RAM")}]");
                    }

                    if (op.Kind == OpKind.CmpXchg)
                    {
                        sb.Append($" expected {Hex(op.Expected.AsSpan(0, op.Size))}");
                    }

                    if (op.IsWrite)
                    {
                        sb.Append($" data {Hex(op.Data.AsSpan(0, op.Size))}");
                    }

                    sb.Append('\n');
                }

                sb.Append("device log:");
                for (int t = 0; t < _log.Count && t < 200; t++)
                {
                    sb.Append(' ').Append(Show(_log[t]));
                }

                throw new XunitException(sb.ToString());
            }
        }
    }
}

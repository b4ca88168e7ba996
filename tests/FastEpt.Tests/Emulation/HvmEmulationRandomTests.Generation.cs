// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Emulation
{
    public sealed partial class HvmEmulationRandomTests
    {
        private sealed partial class Harness
        {
            // ---- instruction generation -----------------------------------------------------

            private void GenerateRandom()
            {
                _instruction++;
                for (int attempt = 0; ; attempt++)
                {
                    _opCount = attempt < 50 ? 1 + _rng.Next(3) : 1;
                    int boundary = 1 + _rng.Next(_linPages - 1);
                    for (int k = 0; k < _opCount; k++)
                    {
                        Operand op = _ops[k];
                        do
                        {
                            if (k > 0 && _rng.Next(2) == 0)
                            {
                                boundary = 1 + _rng.Next(_linPages - 1);     // else: the same boundary, to overlap
                            }

                            int r = _rng.Next(100);
                            op.Kind = r < 40 ? OpKind.Read : r < 72 ? OpKind.Write : OpKind.CmpXchg;
                            op.Tag = op.Kind != OpKind.CmpXchg && _rng.Next(10) == 0 ? AccessTag.SystemTable : AccessTag.Operand;
                            op.Size = _rng.Next(4) == 0 ? s_powerSizes[_rng.Next(s_powerSizes.Length)] : 1 + _rng.Next(64);
                            op.Gla = k > 0 && _rng.Next(4) == 0
                                ? _ops[_rng.Next(k)].Gla        // the same address, another direction or tag (read-modify-write)
                                : _linBase + ((ulong)boundary << 12) - 70 + (ulong)_rng.Next(81);
                        }
                        while (KeyTaken(k));

                        op.Pfec = (_rng.Next(2) == 0 ? PageFaultErrorCode.User : PageFaultErrorCode.None)
                                  | (_rng.Next(4) == 0 ? PageFaultErrorCode.Present : PageFaultErrorCode.None);
                        Place(op);
                    }

                    if (!Hazardous())
                    {
                        break;
                    }

                    _rejected++;
                }

                GenerateData();
            }

            private void GeneratePageCrossing()
            {
                _instruction++;
                _opCount = 1 + _rng.Next(3);
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    do
                    {
                        op.Kind = _rng.Next(4) == 0 ? OpKind.Write : OpKind.Read;
                        op.Tag = AccessTag.Operand;
                        op.Size = 8;
                        int boundary = 1 + _rng.Next(_linPages - 1);
                        op.Gla = _linBase + ((ulong)boundary << 12) - 7 + (ulong)_rng.Next(7);     // page offsets 0xFF9..0xFFF
                    }
                    while (KeyTaken(k));

                    op.Pfec = PageFaultErrorCode.None;
                    Place(op);
                }

                GenerateData();
            }

            private bool KeyTaken(int k)
            {
                Operand op = _ops[k];
                for (int i = 0; i < k; i++)
                {
                    Operand o = _ops[i];
                    if (o.Gla == op.Gla && o.IsWrite == op.IsWrite && (o.Kind == OpKind.CmpXchg ? AccessTag.Operand : o.Tag) == op.Tag)
                    {
                        return true;
                    }
                }

                return false;
            }

            // Splits the operand at the page boundary and finds each piece's GFN in the model.
            private void Place(Operand op)
            {
                int offset = (int)(op.Gla & 0xFFF);
                int first = Math.Min(op.Size, 4096 - offset);
                op.PieceCount = first == op.Size ? 1 : 2;
                op.AllRam = true;
                op.HasMmio = false;
                for (int p = 0; p < op.PieceCount; p++)
                {
                    ulong gla = p == 0 ? op.Gla : op.Gla + (ulong)first;
                    int page = (int)((gla - _linBase) >> 12);
                    int win = _linToWin[page];
                    op.PieceStart[p] = p == 0 ? 0 : first;
                    op.PieceLen[p] = p == 0 ? first : op.Size - first;
                    op.PieceWin[p] = win;
                    op.PieceOff[p] = (int)(gla & 0xFFF);
                    op.PieceMmio[p] = _isMmio[win];
                    op.AllRam &= !_isMmio[win];
                    op.HasMmio |= _isMmio[win];
                }
            }

            // Re-execution redoes RAM pieces: a RAM byte read by operand i and written by a later
            // operand j changes what the re-run of i reads, if a retry can happen at or after j.
            private bool Hazardous()
            {
                for (int j = 1; j < _opCount; j++)
                {
                    if (!_ops[j].IsWrite || !MmioAtOrAfter(j))
                    {
                        continue;
                    }

                    for (int i = 0; i < j; i++)
                    {
                        if (_ops[i].ReadsRam && RamOverlap(_ops[i], _ops[j]))
                        {
                            return true;
                        }
                    }
                }

                return false;
            }

            private bool MmioAtOrAfter(int k)
            {
                for (int i = k; i < _opCount; i++)
                {
                    if (_ops[i].HasMmio)
                    {
                        return true;
                    }
                }

                return false;
            }

            private static bool RamOverlap(Operand a, Operand b)
            {
                for (int p = 0; p < a.PieceCount; p++)
                {
                    for (int q = 0; q < b.PieceCount; q++)
                    {
                        if (!a.PieceMmio[p] && !b.PieceMmio[q] && a.PieceWin[p] == b.PieceWin[q]
                            && a.PieceOff[p] < b.PieceOff[q] + b.PieceLen[q] && b.PieceOff[q] < a.PieceOff[p] + a.PieceLen[p])
                        {
                            return true;
                        }
                    }
                }

                return false;
            }

            // Data and the one-pass reference: the operands applied once, in order, to the model.
            private void GenerateData()
            {
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    int n = op.Size;
                    op.UseCurrent = _rng.Next(2) == 0;
                    switch (op.Kind)
                    {
                        case OpKind.Read:
                            ModelRead(op, op.Reference.AsSpan(0, n));
                            break;

                        case OpKind.Write:
                            _rng.NextBytes(op.Data.AsSpan(0, n));
                            ModelWrite(op, op.Data.AsSpan(0, n));
                            break;

                        default:
                            Span<byte> found = op.Reference.AsSpan(0, n);
                            ModelRead(op, found);
                            found.CopyTo(op.Expected);
                            bool match = _rng.Next(2) == 0;
                            if (!match)
                            {
                                int at = _rng.Next(n);
                                op.Expected[at] ^= (byte)(1 + _rng.Next(255));
                            }

                            _rng.NextBytes(op.Data.AsSpan(0, n));
                            if (!op.AllRam)
                            {
                                // Degrades to a plain write of desired; "found" reads as expected.
                                op.RefSuccess = true;
                                op.Expected.AsSpan(0, n).CopyTo(found);
                                ModelWrite(op, op.Data.AsSpan(0, n));
                                break;
                            }

                            if (match && MmioAtOrAfter(k + 1))
                            {
                                // A re-run would compare against desired: exchange equal values.
                                op.Expected.AsSpan(0, n).CopyTo(op.Data);
                            }

                            op.RefSuccess = match;
                            if (match)
                            {
                                ModelWrite(op, op.Data.AsSpan(0, n));
                            }

                            break;
                    }
                }
            }

            private void ModelRead(Operand op, Span<byte> into)
            {
                for (int p = 0; p < op.PieceCount; p++)
                {
                    _model.AsSpan((op.PieceWin[p] * 4096) + op.PieceOff[p], op.PieceLen[p]).CopyTo(into.Slice(op.PieceStart[p]));
                }
            }

            private void ModelWrite(Operand op, ReadOnlySpan<byte> data)
            {
                for (int p = 0; p < op.PieceCount; p++)
                {
                    data.Slice(op.PieceStart[p], op.PieceLen[p]).CopyTo(_model.AsSpan((op.PieceWin[p] * 4096) + op.PieceOff[p]));
                }
            }
        }
    }
}

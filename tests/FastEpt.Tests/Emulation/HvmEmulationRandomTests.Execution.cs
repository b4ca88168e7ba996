// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;

namespace FastEpt.Tests.Emulation
{
    public sealed partial class HvmEmulationRandomTests
    {
        private sealed partial class Harness
        {
            // ---- execution and checks -------------------------------------------------------

            private void Execute()
            {
                HvmEmulation emu = _emu!;
                _log.Clear();
                for (_pass = 1; ; _pass++)
                {
                    if (_pass > MaxPasses)
                    {
                        Fail($"the instruction did not complete in {MaxPasses} passes");
                    }

                    _passes++;
                    if (RunOnce(emu, out int retriedOp))
                    {
                        break;
                    }

                    if (!emu.HasPendingRequest)
                    {
                        Fail($"operand {retriedOp} returned Retry but no device request is pending");
                    }
                }

                if (emu.HasPendingRequest)
                {
                    Fail("a device request is still pending after every operand returned Okay");
                }

                CheckResults(rerun: false);
                CheckDeviceLog();
                CheckCache(emu);
                CheckMemory();

                if (_rng.Next(10) == 0 && RerunSafe())
                {
                    _reruns++;
                    int logged = _log.Count;
                    for (int k = 0; k < _opCount; k++)
                    {
                        _ops[k].Buffer.AsSpan(0, _ops[k].Size).Clear();
                    }

                    _forbidDevice = true;
                    try
                    {
                        _pass = -1;
                        if (!RunOnce(emu, out int retriedOp))
                        {
                            Fail($"re-run after success: operand {retriedOp} returned Retry");
                        }
                    }
                    finally
                    {
                        _forbidDevice = false;
                    }

                    if (_log.Count != logged)
                    {
                        Fail($"re-run after success issued {_log.Count - logged} device request(s)");
                    }

                    CheckResults(rerun: true);
                    CheckCache(emu);
                    CheckMemory();
                }

                emu.Complete();
                if (emu.CacheEntriesInUse != 0 || emu.HasPendingRequest)
                {
                    Fail($"after Complete(): {emu.CacheEntriesInUse} cache entries in use, pending request {emu.HasPendingRequest}");
                }
            }

            // One pass over the instruction: true when every operand returned Okay.
            private bool RunOnce(HvmEmulation emu, out int retriedOp)
            {
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    _currentOp = k;
                    int n = op.Size;
                    EmulationResult r;
                    switch (op.Kind)
                    {
                        case OpKind.Read:
                            r = emu.LinearRead(op.Gla, op.Buffer.AsSpan(0, n), op.Pfec, op.Tag);
                            break;

                        case OpKind.Write:
                            r = emu.LinearWrite(op.Gla, op.Data.AsSpan(0, n), op.Pfec, op.Tag);
                            break;

                        default:
                            r = op.UseCurrent
                                ? emu.CmpXchg(op.Gla, op.Expected.AsSpan(0, n), op.Data.AsSpan(0, n), op.Pfec, op.Buffer.AsSpan(0, n))
                                : emu.CmpXchg(op.Gla, op.Expected.AsSpan(0, n), op.Data.AsSpan(0, n), op.Pfec);
                            if (r == EmulationResult.Okay)
                            {
                                op.Success = emu.LastCompareSucceeded;
                            }

                            break;
                    }

                    if (r == EmulationResult.Retry)
                    {
                        if (!op.HasMmio)
                        {
                            Fail($"operand {k} has no MMIO byte but returned Retry");
                        }

                        retriedOp = k;
                        return false;
                    }

                    if (r != EmulationResult.Okay)
                    {
                        Fail($"operand {k} returned {r}: {emu.LastFailure ?? emu.LastException.ToString()}");
                    }
                }

                retriedOp = -1;
                return true;
            }

            // ---- the recording device -------------------------------------------------------

            public MmioResult DeviceAccess(RecordingDevice device, ulong gpa, int size, bool write, ulong value, out ulong result)
            {
                result = 0;
                if (_forbidDevice)
                {
                    Fail($"re-run after success: the device was asked to {(write ? "write" : "read")} {size} bytes at 0x{gpa:X}");
                }

                if (size is not (1 or 2 or 4 or 8))
                {
                    Fail($"device access of {size} bytes at 0x{gpa:X}");
                }

                if ((gpa & 0xFFF) + (ulong)size > 0x1000)
                {
                    Fail($"device access of {size} bytes at 0x{gpa:X} crosses a page");
                }

                ulong gfn = gpa >> 12;
                if (gfn < WindowGfn + (ulong)device.FirstWin || gfn >= WindowGfn + (ulong)(device.FirstWin + device.Pages))
                {
                    Fail($"device {device.Id} (GFNs 0x{WindowGfn + (ulong)device.FirstWin:X}+{device.Pages}) asked for 0x{gpa:X}");
                }

                int at = (int)((gfn - WindowGfn) << 12) + (int)(gpa & 0xFFF);
                bool retry = _retryRate == Asynchronous
                    ? _log.Count == 0 || !_log[^1].Retried || !SameRequest(_log[^1], new Request(_currentOp, device.Id, gpa, size, write, value, true))
                    : _retryRate > 0 && _rng.NextDouble() < _retryRate;
                if (retry)
                {
                    _log.Add(new Request(_currentOp, device.Id, gpa, size, write, value, true));
                    result = 0xBAD0_BAD0_BAD0_BAD0;     // must not be used
                    return MmioResult.Retry;
                }

                Span<byte> bytes = _deviceStore.AsSpan(at, size);
                if (write)
                {
                    Span<byte> v = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(v, value);
                    v[..size].CopyTo(bytes);
                }
                else
                {
                    result = Little(bytes);
                }

                _log.Add(new Request(_currentOp, device.Id, gpa, size, write, write ? value : result, false));
                return MmioResult.Okay;
            }
        }
    }
}

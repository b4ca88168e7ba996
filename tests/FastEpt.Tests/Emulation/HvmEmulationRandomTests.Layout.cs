// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;
using FastEpt.Tests.Guest;

namespace FastEpt.Tests.Emulation
{
    public sealed partial class HvmEmulationRandomTests
    {
        private sealed partial class Harness
        {
            // ---- layouts ---------------------------------------------------------------------

            private void BuildLayout(double mmioShare, bool devicePerPage)
            {
                _domain?.Dispose();
                _layout++;
                _retryRate = s_retryRates[_rng.Next(s_retryRates.Length)];
                _domain = new Domain(_memory, new DomainOptions { AltViews = 0 });
                P2m host = _domain.HostP2m;
                for (ulong t = 0; t < 4; t++)
                {
                    _memory.Frame(_tableMfn + t).Clear();
                    host.SetEntry(Pml4Gfn + t, _tableMfn + t, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }

                for (int i = 0; i < WindowPages; i++)
                {
                    _isMmio[i] = _rng.NextDouble() < mmioShare;
                    _owner[i] = null;
                }

                // Guarantee both kinds where the share allows it.
                if (mmioShare > 0 && mmioShare < 1)
                {
                    _isMmio[_rng.Next(WindowPages)] = true;
                    _isMmio[_rng.Next(WindowPages)] = false;
                }

                _deviceCount = 0;
                int w = 0;
                while (w < WindowPages)
                {
                    if (!_isMmio[w])
                    {
                        host.SetEntry(WindowGfn + (ulong)w, _ramMfn + (ulong)w, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                        w++;
                        continue;
                    }

                    // A run of MMIO pages, cut into devices of random extent.
                    int run = 1;
                    while (w + run < WindowPages && _isMmio[w + run])
                    {
                        run++;
                    }

                    int at = w;
                    while (at < w + run)
                    {
                        int pages = devicePerPage ? 1 : 1 + _rng.Next(w + run - at);
                        var device = new RecordingDevice(this, ++_deviceCount, at, pages);
                        _domain.MapMmio(WindowGfn + (ulong)at, (ulong)pages, device);
                        for (int p = at; p < at + pages; p++)
                        {
                            _owner[p] = device;
                        }

                        at += pages;
                    }

                    w += run;
                }

                // Random contents: the model, RAM frames and device bytes agree.
                _rng.NextBytes(_model);
                for (int i = 0; i < WindowPages; i++)
                {
                    Span<byte> page = _model.AsSpan(i * 4096, 4096);
                    if (_isMmio[i])
                    {
                        page.CopyTo(_deviceStore.AsSpan(i * 4096, 4096));
                    }
                    else
                    {
                        page.CopyTo(_memory.Frame(_ramMfn + (ulong)i));
                        _deviceStore.AsSpan(i * 4096, 4096).Clear();
                    }
                }

                Vcpu cpu = _domain.Vcpus[0];
                if (_longMode)
                {
                    cpu.Mode = GuestPagingMode.LongMode4;
                    cpu.Cr3 = Pml4Gfn << 12;
                    cpu.Wp = _rng.Next(2) == 1;
                    cpu.Nxe = true;
                    _linPages = LongModeLinearPages;
                    ulong i4 = (ulong)_rng.Next(256), i3 = (ulong)_rng.Next(512), i2 = (ulong)_rng.Next(512);
                    ulong i1 = (ulong)_rng.Next(512 - LongModeLinearPages + 1);
                    _linBase = (i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12);
                    ulong extra = _rng.Next(2) == 1 ? Pte.Accessed : 0;
                    _tables = new GuestPageTableBuilder(_memory, gfn => _tableMfn + (gfn - Pml4Gfn), levels: 4, firstTableGfn: Pml4Gfn, firstPageTableGfn: PtGfn);
                    _tables.TableFor(_linBase, level: 1, TableFlags | extra);
                    RemapLinear();
                }
                else
                {
                    cpu.Mode = GuestPagingMode.Flat;
                    _linPages = WindowPages;
                    _linBase = WindowGfn << 12;
                    for (int j = 0; j < WindowPages; j++)
                    {
                        _linToWin[j] = j;
                    }
                }

                // Mostly Xen's 3 x 64 bytes; sometimes more or larger entries (same behaviour for <= 3 operands of <= 64 bytes).
                _cacheEntries = _rng.Next(4) == 0 ? 3 + _rng.Next(14) : 3;
                _entryBytes = _rng.Next(4) == 0 ? 64 + (8 * _rng.Next(505)) : 64;
                _emu = new HvmEmulation(cpu, _cacheEntries, _entryBytes);
            }

            // Long mode: each linear page of the window maps to a random window GFN (aliases allowed).
            private void RemapLinear()
            {
                for (int j = 0; j < _linPages; j++)
                {
                    _linToWin[j] = _rng.Next(WindowPages);
                    ulong ad = _rng.Next(3) switch { 0 => 0, 1 => Pte.Accessed, _ => Pte.Accessed | Pte.Dirty };
                    _tables!.Map(_linBase + ((ulong)j << 12), (WindowGfn + (ulong)_linToWin[j]) << 12, PageOrder.Size4K, TableFlags | ad, TableFlags);
                    _domain!.Vcpus[0].Tlb.Invlpg(_linBase + ((ulong)j << 12));     // as the guest would: its TLB may hold the old entry
                }
            }
        }
    }
}

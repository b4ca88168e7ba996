// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using FastEpt.Interop.Internal;
using static FastEpt.Interop.FastEptNative;
using NativeAccess = FastEpt.P2m.NativeAccess;

namespace FastEpt.Interop
{
    /// <summary>
    /// The safe facade over FastEpt's native twin (<c>libfastept</c>, see <c>native/include/fastept.h</c>):
    /// translates, looks up and writes EPT tables in a <see cref="HostMemory"/> with the C walker,
    /// which gives bit-identical results to the managed <see cref="P2m"/> for the same memory and
    /// arguments.
    /// </summary>
    /// <remarks>
    /// <para>A walker is bound either to a <see cref="FastEpt.P2m"/> (<see cref="NativeWalker(FastEpt.P2m)"/>),
    /// whose tables, options and bookkeeping it shares, or to any hierarchy in a host memory
    /// (<see cref="NativeWalker(HostMemory, ulong, P2mOptions?)"/>).</para>
    /// <para><b>Errors.</b> Every argument is checked in managed code before the native call, and
    /// bad arguments throw the same exception types, with the same parameter names, as the
    /// matching <see cref="FastEpt.P2m"/> method.</para>
    /// <para><b>Concurrency.</b> <see cref="Translate"/>, <see cref="TranslateBatch"/> and
    /// <see cref="GetEntry"/> take no lock and allocate nothing; they may run on any number of
    /// threads alongside writers. They announce themselves to FastEpt's epoch-based reclamation as
    /// the managed readers do, so a p2m never frees a table a native walk can still be inside.
    /// <see cref="SetEntry"/> is serialised: on a p2m-bound walker with the p2m's own writers, on a
    /// memory-bound walker with the other writers of that walker.</para>
    /// <para><b>Loading.</b> The first walker created checks that the native library loads and that
    /// its ABI version equals <see cref="FastEptNative.FASTEPT_ABI_VERSION"/>.</para>
    /// </remarks>
    public sealed unsafe partial class NativeWalker
    {
        // A 1 GiB superpage split down to 4 KiB needs one page directory and 512 page tables.
        private const int WorstCasePool = 1 + 512;

        private static volatile bool s_verified;

        private fastept_walker _walker;                     // pinned with `fixed` for each native call
        private readonly P2m? _p2m;
        private readonly HostMemory _memory;
        private readonly int _levels;
        private readonly int _addressBits;
        private readonly ulong _gpaLimit;
        private readonly ulong _gfnLimit;
        private readonly bool _support1G;
        private readonly bool _customMemoryTypes;           // EmtPolicy or MmioReadOnly set: native SetEntry unsupported
        private readonly Lock? _writeLock;                  // memory-bound walkers only
        private readonly List<(ulong Table, uint Level)>? _retired;

        /// <summary>
        /// Creates a walker over <paramref name="p2m"/>'s tables: same host memory, EPTP and options;
        /// <see cref="GetEntry"/> uses the p2m's <see cref="FastEpt.P2m.MaxMappedPfn"/> at each call,
        /// and <see cref="SetEntry"/> keeps the p2m's own bookkeeping coherent.
        /// </summary>
        /// <param name="p2m">The p2m; it must outlive the walker.</param>
        /// <exception cref="ArgumentNullException"><paramref name="p2m"/> is null.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <exception cref="DllNotFoundException">The native library is not built (run ./build.sh).</exception>
        /// <exception cref="InvalidOperationException">The native library's ABI version differs from the bindings'.</exception>
        public NativeWalker(P2m p2m)
        {
            ArgumentNullException.ThrowIfNull(p2m);
            EnsureNative();
            if (NativeAccess.IsDisposed(p2m))
            {
                ThrowHelper.ThrowObjectDisposedException(p2m);
            }

            P2mOptions o = p2m.Options;
            _p2m = p2m;
            _memory = p2m.Memory;
            _levels = p2m.Levels;
            _addressBits = o.AddressBits;
            _support1G = o.Support1G;
            _customMemoryTypes = o.EmtPolicy is not null || o.MmioReadOnly is not null;
            _gpaLimit = 1UL << _addressBits;
            _gfnLimit = 1UL << (_addressBits - EptEntry.PageBits);
            _walker = new fastept_walker
            {
                host_base = NativeAccess.HostBase(_memory),
                host_frames = (ulong)_memory.FrameCount,
                eptp = p2m.Eptp,
                max_mapped_pfn = p2m.MaxMappedPfn,
                address_bits = (uint)o.AddressBits,
                host_address_bits = (uint)o.HostAddressBits,
                caps = CapsOf(o),
                default_access = (uint)o.DefaultAccess,
            };
            CheckWalker("p2m");
        }

        /// <summary>
        /// Creates a walker over any EPT hierarchy in <paramref name="memory"/>, rooted where
        /// <paramref name="eptp"/> says. It keeps its own <see cref="MaxMappedPfn"/> (initially
        /// <see cref="ulong.MaxValue"/>: <see cref="GetEntry"/> always walks).
        /// </summary>
        /// <param name="memory">Where the tables live; it must outlive the walker.</param>
        /// <param name="eptp">The EPT pointer: root table HPA (bits 51:12), levels - 1 (bits 5:3; 4 or 5
        /// levels), memory type and A/D enable (bit 6). The number of levels comes from here.</param>
        /// <param name="options">CPU and domain settings (<see cref="P2mOptions.AddressBits"/>,
        /// <see cref="P2mOptions.HostAddressBits"/>, capabilities, <see cref="P2mOptions.DefaultAccess"/>),
        /// copied now; null for the defaults. <see cref="P2mOptions.Levels"/> and
        /// <see cref="P2mOptions.AccessDirty"/> are taken from <paramref name="eptp"/> instead.</param>
        /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An option is out of range, or <paramref name="eptp"/>
        /// names a level count other than 4 or 5 or a root outside <paramref name="memory"/>.</exception>
        /// <exception cref="ArgumentException">The native library rejects the combination.</exception>
        /// <exception cref="ObjectDisposedException"><paramref name="memory"/> was disposed.</exception>
        /// <exception cref="DllNotFoundException">The native library is not built (run ./build.sh).</exception>
        /// <exception cref="InvalidOperationException">The native library's ABI version differs from the bindings'.</exception>
        public NativeWalker(HostMemory memory, ulong eptp, P2mOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(memory);
            P2mOptions o = NativeAccess.ValidatedOptions(options, nameof(options));
            EnsureNative();

            int levels = (int)((eptp >> 3) & 7) + 1;
            if (levels is not (4 or 5))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(eptp), $"0x{eptp:X}", $"The EPTP names {levels} paging levels; 4 or 5 are supported.");
            }

            if (o.AddressBits > EptEntry.PageBits + EptEntry.TableOrder * levels)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(options), o.AddressBits, $"P2mOptions.AddressBits must be at most {EptEntry.PageBits + EptEntry.TableOrder * levels} for the EPTP's {levels} levels.");
            }

            ulong root = (eptp & EptEntry.MfnMask) >> EptEntry.MfnShift;
            if (root >= (ulong)memory.FrameCount)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(eptp), $"0x{eptp:X}", $"The root table 0x{root:X} is outside host memory ({memory.FrameCount} frames).");
            }

            // The VM-entry EPTP check on a CPU with everything the walker supports (as fastept_walker_check).
            EptpStatus eptpStatus = new Eptp(eptp).Check(EptpCapabilities.AllWalkable(o.HostAddressBits));
            if (eptpStatus != EptpStatus.Ok)
            {
                ThrowHelper.ThrowArgumentException(nameof(eptp), $"VM entry would reject EPTP 0x{eptp:X}: its {eptpStatus} field is invalid (Eptp.Check, docs/model/ept.md §1.7).");
            }

            _memory = memory;
            _levels = levels;
            _addressBits = o.AddressBits;
            _support1G = o.Support1G;
            _customMemoryTypes = o.EmtPolicy is not null || o.MmioReadOnly is not null;
            _gpaLimit = 1UL << _addressBits;
            _gfnLimit = 1UL << (_addressBits - EptEntry.PageBits);
            _writeLock = new Lock();
            _retired = new List<(ulong, uint)>();
            _walker = new fastept_walker
            {
                host_base = NativeAccess.HostBase(memory),
                host_frames = (ulong)memory.FrameCount,
                eptp = eptp,
                max_mapped_pfn = ulong.MaxValue,
                address_bits = (uint)o.AddressBits,
                host_address_bits = (uint)o.HostAddressBits,
                caps = CapsOf(o),
                default_access = (uint)o.DefaultAccess,
            };
            CheckWalker(nameof(eptp));
        }

        /// <summary>
        /// The ABI version of the loaded native library (<c>fastept_abi_version()</c>); the bindings
        /// expect <see cref="FastEptNative.FASTEPT_ABI_VERSION"/>.
        /// </summary>
        /// <exception cref="DllNotFoundException">The native library is not built (run ./build.sh).</exception>
        public static int AbiVersion => (int)LoadAbiVersion();

        /// <summary>The p2m this walker is bound to, or null for a walker over host memory.</summary>
        public P2m? P2m => _p2m;

        /// <summary>The host memory the tables live in.</summary>
        public HostMemory Memory => _memory;

        /// <summary>The EPT pointer the walks start from.</summary>
        public ulong Eptp => _walker.eptp;

        /// <summary>Paging levels (4 or 5).</summary>
        public int Levels => _levels;

        /// <summary>
        /// <see cref="GetEntry"/> reports GFNs above this as holes without walking. For a p2m-bound
        /// walker it is the p2m's <see cref="FastEpt.P2m.MaxMappedPfn"/> (read-only here); for a
        /// memory-bound walker it starts at <see cref="ulong.MaxValue"/> ("always walk") and
        /// <see cref="SetEntry"/> raises it like the p2m's.
        /// </summary>
        /// <exception cref="InvalidOperationException">Set on a p2m-bound walker.</exception>
        public ulong MaxMappedPfn
        {
            get => _p2m is not null ? _p2m.MaxMappedPfn : Volatile.Read(ref _walker.max_mapped_pfn);
            set
            {
                if (_p2m is not null || _writeLock is null)
                {
                    throw new InvalidOperationException("This walker is bound to a P2m: it uses the p2m's MaxMappedPfn, which only the p2m's writers change.");
                }

                lock (_writeLock)
                {
                    Volatile.Write(ref _walker.max_mapped_pfn, value);
                }
            }
        }

        /// <summary>Number of unlinked table subtrees a memory-bound walker holds for <see cref="ReclaimRetired"/>; 0 for a p2m-bound walker.</summary>
        public int RetiredSubtreeCount
        {
            get
            {
                if (_retired is null || _writeLock is null)
                {
                    return 0;
                }

                lock (_writeLock)
                {
                    return _retired.Count;
                }
            }
        }

        private void CheckWalker(string paramName)
        {
            int rc;
            fixed (fastept_walker* w = &_walker)
            {
                rc = fastept_walker_check(w);
            }

            if (rc != FASTEPT_OK)
            {
                ThrowHelper.ThrowArgumentException(paramName, $"The native library rejects this walker (code {rc}): EPTP 0x{_walker.eptp:X}, {_walker.host_frames} host frames, {_walker.address_bits}-bit guest and {_walker.host_address_bits}-bit host addresses.");
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void ThrowIfDisposed()
        {
            if ((_p2m is not null && NativeAccess.IsDisposed(_p2m)) || NativeAccess.IsDisposed(_memory))
            {
                ThrowDisposed();
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void ThrowDisposed()
        {
            if (_p2m is not null && NativeAccess.IsDisposed(_p2m))
            {
                ThrowHelper.ThrowObjectDisposedException(_p2m);
            }

            ThrowHelper.ThrowObjectDisposedException(_memory);
        }

        private static uint CapsOf(P2mOptions o)
            => (o.ExecuteOnly ? FASTEPT_CAP_EXECUTE_ONLY : 0)
               | (o.Support1G ? FASTEPT_CAP_1G : 0)
               | (o.PmlEnabled ? FASTEPT_CAP_PML : 0)
               | (o.PagingWriteSupported ? FASTEPT_CAP_PAGING_WRITE : 0)
               | (o.ExecutableSuperpages ? FASTEPT_CAP_EXEC_SUPERPAGES : 0)
               | (o.IoreqServerClaimsWrites ? FASTEPT_CAP_IOREQ_CLAIMS_WRITES : 0);
    }
}

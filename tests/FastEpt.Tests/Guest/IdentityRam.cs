// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// A domain whose host p2m maps guest-physical [0, <see cref="RamBytes"/>) as 2 MiB RamRw RWX
    /// leaves onto one 2 MiB-aligned run of host frames, so guest RAM is one flat span (reserved,
    /// not committed: only the pages the tests touch cost memory).
    /// </summary>
    internal sealed class IdentityRam : IDisposable
    {
        public const ulong RamBytes = 2UL << 30;
        private const ulong FramesPer2M = 512;

        public IdentityRam(int eptLevels, int addressBits, bool accessDirty)
        {
            Memory = new HostMemory((long)(RamBytes + (8UL << 20)));
            Domain = new Domain(Memory, new DomainOptions { AltViews = 0, P2m = new P2mOptions { Levels = eptLevels, AddressBits = addressBits, AccessDirty = accessDirty } });
            ulong next = Memory.AllocateFrames(1) + 1;
            ulong pad = (FramesPer2M - (next % FramesPer2M)) % FramesPer2M;
            if (pad != 0)
            {
                Memory.AllocateFrames((long)pad);
            }

            ulong ramMfn = Memory.AllocateFrames((long)(RamBytes >> 12));
            Assert.Equal(0UL, ramMfn % FramesPer2M);
            RamHpa = ramMfn << 12;
            for (ulong g = 0; g < RamBytes >> 12; g += FramesPer2M)
            {
                Domain.HostP2m.SetEntry(g, ramMfn + g, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            }
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamHpa { get; }

        public Vcpu Cpu => Domain.Vcpus[0];

        public ulong Read(ulong gpa) => Memory.ReadUInt64(RamHpa + gpa);

        public void Write(ulong gpa, ulong value) => Memory.WriteUInt64(RamHpa + gpa, value);

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>The <c>config</c> line in force for a vector (tests/Data/README.md).</summary>
    /// <param name="Levels">Paging levels, 4 or 5.</param>
    /// <param name="MaxPhyAddr">MAXPHYADDR (host-physical width), 32..52.</param>
    /// <param name="ExecuteOnly">Execute-only entries supported (<c>xo</c>).</param>
    /// <param name="Support1G">1 GiB pages supported (<c>1g</c>).</param>
    /// <param name="AccessDirty">EPTP accessed/dirty enable (<c>ad</c>).</param>
    public sealed record TranslateConfig(int Levels, int MaxPhyAddr, bool ExecuteOnly, bool Support1G, bool AccessDirty)
    {
        /// <summary><c>levels=4 maxphyaddr=46 xo=1 1g=1 ad=0</c>.</summary>
        public static TranslateConfig Default { get; } = new(4, 46, true, true, false);

        /// <summary>Guest-physical width: 12 + 9 * levels.</summary>
        public int GpaBits => 12 + (9 * Levels);

        /// <summary>The options a <see cref="P2m"/> needs to walk as this config says.</summary>
        public P2mOptions ToP2mOptions() => new()
        {
            Levels = Levels,
            AddressBits = GpaBits,
            HostAddressBits = MaxPhyAddr,
            ExecuteOnly = ExecuteOnly,
            Support1G = Support1G,
            AccessDirty = AccessDirty,
        };

        /// <summary>The config in the file's own syntax.</summary>
        public override string ToString()
            => $"config levels={Levels} maxphyaddr={MaxPhyAddr} xo={(ExecuteOnly ? 1 : 0)} 1g={(Support1G ? 1 : 0)} ad={(AccessDirty ? 1 : 0)}";
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt
{
    /// <summary>The mem_access violation table (docs/model/mem-access.md §5.1) and the rights of each <see cref="P2mAccess"/>.</summary>
    public static class MemAccessRules
    {
        /// <summary>
        /// The r/w/x rights an access grants as a mask (1 = read, 2 = write, 4 = execute):
        /// N..RWX are their own mask, rx2rw grants rx, n2rwx nothing, r_pw read.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">Unknown access value.</exception>
        public static uint Rights(P2mAccess access) => access switch
        {
            <= P2mAccess.RWX => (uint)access,
            P2mAccess.RX2RW => 5,
            P2mAccess.N2RWX => 0,
            P2mAccess.R_PW => 1,
            _ => throw new ArgumentOutOfRangeException(nameof(access), access, "Unknown P2mAccess value."),
        };

        /// <summary>
        /// True when an access of <paramref name="kind"/> violates <paramref name="access"/>:
        /// n/n2rwx any; r/r_pw W or X; w R or X; x R or W; rx/rx2rw W; wx R; rw X; rwx never.
        /// </summary>
        public static bool IsViolation(P2mAccess access, AccessKind kind)
            => ((uint)kind & 7u & ~Rights(access)) != 0;

        /// <summary>
        /// Whether mem_access explains a failed translation (docs/model/mem-access.md §5.4, the get-page-from-GVA
        /// check): rwx/rw never; n/n2rwx/x always; w/wx only for reads; r/r_pw/rx/rx2rw only for writes.
        /// </summary>
        public static bool ExplainsFailure(P2mAccess access, bool write) => access switch
        {
            P2mAccess.RWX or P2mAccess.RW => false,
            P2mAccess.N or P2mAccess.N2RWX or P2mAccess.X => true,
            P2mAccess.W or P2mAccess.WX => !write,
            P2mAccess.R or P2mAccess.R_PW or P2mAccess.RX or P2mAccess.RX2RW => write,
            _ => throw new ArgumentOutOfRangeException(nameof(access), access, "Unknown P2mAccess value."),
        };
    }
}

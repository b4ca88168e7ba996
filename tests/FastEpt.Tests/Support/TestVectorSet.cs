// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests
{
    /// <summary>What <see cref="TestVectors.Load"/> or <see cref="TestVectors.Parse"/> found.</summary>
    public sealed class TestVectorSet
    {
        internal TestVectorSet(IReadOnlyList<string> files, IReadOnlyList<TranslateVector> cases, IReadOnlyList<string> errors)
        {
            Files = files;
            Cases = cases;
            Errors = errors;
        }

        /// <summary>File names read, in ordinal order.</summary>
        public IReadOnlyList<string> Files { get; }

        /// <summary>Every well-formed case, file by file, in line order.</summary>
        public IReadOnlyList<TranslateVector> Cases { get; }

        /// <summary>One <c>file:line: message</c> per malformed line (or missing file); empty when all is well.</summary>
        public IReadOnlyList<string> Errors { get; }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;

namespace FastEpt.Tests
{
    /// <summary>Finds the repository checkout the tests run from (the folder holding FastEpt.sln).</summary>
    internal static class RepositoryRoot
    {
        public static string Find()
        {
            for (DirectoryInfo? dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "FastEpt.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException($"No folder above {AppContext.BaseDirectory} contains FastEpt.sln.");
        }
    }
}

// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Runtime.Loader;

// Two builds of FastEpt.Walker in one process, each in its own load context with its own copy
// of the loop, run in alternating short rounds (order flipped every round) so that both meet
// the same machine noise. Prints the medians and the median of the per-round time ratios.
namespace FastEpt.Compare
{
    internal static class Host
    {
        private static Func<double, double> Load(string dir)
        {
            string full = Path.GetFullPath(dir);
            var context = new AssemblyLoadContext(full, isCollectible: false);
            context.Resolving += (ctx, name) =>
            {
                string path = Path.Combine(full, name.Name + ".dll");
                return File.Exists(path) ? ctx.LoadFromAssemblyPath(path) : null;
            };
            Type loop = context.LoadFromAssemblyPath(Path.Combine(full, "FastEpt.CompareLoop.dll")).GetType("FastEpt.Compare.Loop")!;
            loop.GetMethod("Setup")!.Invoke(null, null);
            return loop.GetMethod("Run")!.CreateDelegate<Func<double, double>>();
        }

        private static int Main(string[] args)
        {
            if (args.Length < 2)
            {
                Console.Error.WriteLine("usage: FastEpt.CompareHost BASE_DIR NEW_DIR [ROUNDS]");
                return 2;
            }

            Func<double, double> baseline = Load(args[0]), candidate = Load(args[1]);
            int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 300;
            const double Seconds = 0.02;
            for (int i = 0; i < 10; i++)
            {
                baseline(Seconds);
                candidate(Seconds);
            }

            var b = new double[rounds];
            var c = new double[rounds];
            var ratio = new double[rounds];
            for (int i = 0; i < rounds; i++)
            {
                if ((i & 1) == 0)
                {
                    b[i] = baseline(Seconds);
                    c[i] = candidate(Seconds);
                }
                else
                {
                    c[i] = candidate(Seconds);
                    b[i] = baseline(Seconds);
                }

                ratio[i] = c[i] / b[i];
            }

            Array.Sort(b);
            Array.Sort(c);
            Array.Sort(ratio);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"SetEntry ns/call: base median {b[rounds / 2]:F1} (min {b[0]:F1}), new median {c[rounds / 2]:F1} (min {c[0]:F1})"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"new / base, time: median of {rounds} round ratios {ratio[rounds / 2]:F3} (quartiles {ratio[rounds / 4]:F3} .. {ratio[3 * rounds / 4]:F3}); ratio of minima {c[0] / b[0]:F3}"));
            return 0;
        }
    }
}

"""static_c_binary: a static C program that runs inside a sandbox stub.

Built with a genrule rather than cc_binary: the asan config adds
-fsanitize=address to every link line after a target's own options, and gcc
refuses -static with it. Such programs run in stubs and are never
instrumented.
"""

def static_c_binary(name, src, out = None, copts = "-O2", testonly = False, visibility = None):
    native.genrule(
        name = name,
        testonly = testonly,
        srcs = [src],
        outs = [out or name],
        cmd = "$(CC) " + copts + " -static -o $@ $(location " + src + ")",
        toolchains = ["@bazel_tools//tools/cpp:current_cc_toolchain"],
        visibility = visibility,
    )

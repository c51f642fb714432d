"""cc_capnp_library: compiles .capnp schemas with the system capnp tool."""

def cc_capnp_library(name, srcs, deps = [], visibility = None):
    """Generates C++ from `srcs` and wraps it in a cc_library.

    Imports are resolved from the workspace root (`using import "/schemas/x.capnp"`)
    and /usr/include (for `/capnp/c++.capnp`).
    """
    hdrs = [s + ".h" for s in srcs]
    ccs = [s + ".c++" for s in srcs]
    pkg = native.package_name()
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_srcs" for d in deps],
        outs = hdrs + ccs,
        tools = ["@capnp//:capnp_tool", "@capnp//:capnpc_cxx"],
        cmd = ("$(location @capnp//:capnp_tool) compile -I/usr/include -I. " +
               "--no-standard-import --src-prefix=" + (pkg if pkg else ".") +
               " -o$(location @capnp//:capnpc_cxx):$(RULEDIR) " +
               " ".join(["$(location " + s + ")" for s in srcs])),
    )
    native.filegroup(name = name + "_srcs", srcs = srcs, visibility = visibility)
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        deps = deps + ["@capnp"],
        visibility = visibility,
    )

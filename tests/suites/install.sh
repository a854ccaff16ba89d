# Installation and the launcher (mk/install.mk, scripts/hakmem.in): make install into a
# temporary DESTDIR, programs built against it with pkg-config and CMake, make uninstall; the
# staged launcher's options, pass-through and error cases; the README options table against
# src/options.c. Sourced by tests/run_all.sh. Needs cc, cmake, pkg-config and groff (.ci/run).
t install/tree tests/install/install_check.sh
t install/launcher tests/install/launcher_check.sh
t install/options_readme tests/install/options_readme.sh

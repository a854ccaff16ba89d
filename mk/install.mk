# Installation: `make install` and `make uninstall` with GNU-style DESTDIR and directories
# (PREFIX, EXEC_PREFIX, BINDIR, LIBDIR, INCLUDEDIR, DATAROOTDIR, MANDIR, PKGCONFIGDIR,
# CMAKEDIR; the lower-case GNU names prefix, bindir, libdir, ... work too). Uninstall removes
# exactly the files install writes, and the directories only hakmem uses once they are empty.
# Also builds what is made from the options table of src/options.c: build/hakmem (the
# launcher, running build/'s library) and the man pages build/man/hakmem.1 and hakmem.3.

prefix       ?= /usr/local
PREFIX       ?= $(prefix)
exec_prefix  ?= $(PREFIX)
EXEC_PREFIX  ?= $(exec_prefix)
bindir       ?= $(EXEC_PREFIX)/bin
BINDIR       ?= $(bindir)
libdir       ?= $(EXEC_PREFIX)/lib
LIBDIR       ?= $(libdir)
includedir   ?= $(PREFIX)/include
INCLUDEDIR   ?= $(includedir)
datarootdir  ?= $(PREFIX)/share
DATAROOTDIR  ?= $(datarootdir)
mandir       ?= $(DATAROOTDIR)/man
MANDIR       ?= $(mandir)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/hakmem
HARDENEDDIR  ?= $(LIBDIR)/hakmem/hardened
INSTALL      ?= install
LDCONFIG     ?= ldconfig

# The hardened build (`make hardened`), installed only where it was built.
HARDENED_LIB := $(BUILD)/hardened/libhakmem.so

OPTIONS_LIST := $(BUILD)/tools/options_list
MAN_PAGES    := $(BUILD)/man/hakmem.1 $(BUILD)/man/hakmem.3
all: $(BUILD)/hakmem $(MAN_PAGES)

$(OPTIONS_LIST): tools/options_list.c $(LIB_HDRS) $(BUILD)/libhakmem.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) -Isrc $< -o $@ $(BUILD)/libhakmem.a -lpthread

# $(call hk_fill,TEMPLATE,FORMAT): @VERSION@, @MAJOR@ and @OPTION_NAMES@ filled in, and a line
# @OPTIONS@ replaced by the options table as `options_list FORMAT` prints it.
hk_fill = $(OPTIONS_LIST) $(2) >$@.options && \
    awk -v version='$(VERSION)' -v major='$(VERSION_MAJOR)' \
        -v names="$$($(OPTIONS_LIST) names)" -v opts='$@.options' \
        '/^@OPTIONS@$$/ { while ((getline l < opts) > 0) print l; next } \
         { gsub(/@VERSION@/, version); gsub(/@MAJOR@/, major); gsub(/@OPTION_NAMES@/, names); \
           print }' $(1) >$@ && rm -f $@.options

# The launcher with the version and options in; where the library lies is filled in below.
$(BUILD)/launcher.sh: scripts/hakmem.in $(OPTIONS_LIST)
	$(call hk_fill,$<,help)

$(BUILD)/hakmem: $(BUILD)/launcher.sh
	sed -e 's|@LIB@|libhakmem.so|' -e 's|@HARDENED_LIB@|hardened/libhakmem.so|' $< >$@
	chmod 755 $@

$(BUILD)/man/%: docs/man/%.in $(OPTIONS_LIST)
	@mkdir -p $(@D)
	$(call hk_fill,$<,man)

# Paths in the installed files: relative where the file must find another one (launcher ->
# library, CMake package -> library and headers), so that the tree can be staged or moved.
hk_rel = $$(realpath -m --relative-to='$(1)' '$(2)')
# hakmem.pc names its directories from ${prefix} and ${exec_prefix} where they lie under them.
hk_pc_prefix = $(if $(filter $(PREFIX),$(1)),$${prefix},$(patsubst $(PREFIX)/%,$${prefix}/%,$(1)))
hk_pc_exec = $(patsubst $(EXEC_PREFIX)/%,$${exec_prefix}/%,$(1))

INSTALLED := $(BINDIR)/hakmem $(LIBDIR)/libhakmem.so.$(VERSION) $(LIBDIR)/$(SONAME) \
    $(LIBDIR)/libhakmem.so $(LIBDIR)/libhakmem.a $(INCLUDEDIR)/hakmem.h \
    $(INCLUDEDIR)/hakmem_spsc.h $(PKGCONFIGDIR)/hakmem.pc $(CMAKEDIR)/hakmemConfig.cmake \
    $(CMAKEDIR)/hakmemConfigVersion.cmake $(MANDIR)/man1/hakmem.1 $(MANDIR)/man3/hakmem.3 \
    $(HARDENEDDIR)/libhakmem.so

.PHONY: install uninstall
install: $(BUILD)/libhakmem.so $(BUILD)/libhakmem.a $(BUILD)/launcher.sh $(MAN_PAGES)
	@for d in '$(PREFIX)' '$(EXEC_PREFIX)' '$(BINDIR)' '$(LIBDIR)' '$(INCLUDEDIR)' '$(MANDIR)' \
	    '$(PKGCONFIGDIR)' '$(CMAKEDIR)' '$(HARDENEDDIR)'; do \
	    case $$d in /*) ;; *) echo "make install: '$$d' is not an absolute path" >&2; exit 1 ;; esac; \
	done
	$(INSTALL) -d '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)' \
	    '$(DESTDIR)$(PKGCONFIGDIR)' '$(DESTDIR)$(CMAKEDIR)' '$(DESTDIR)$(MANDIR)/man1' \
	    '$(DESTDIR)$(MANDIR)/man3'
	$(INSTALL) -m 755 $(BUILD)/libhakmem.so '$(DESTDIR)$(LIBDIR)/libhakmem.so.$(VERSION)'
	ln -sfn libhakmem.so.$(VERSION) '$(DESTDIR)$(LIBDIR)/$(SONAME)'
	ln -sfn $(SONAME) '$(DESTDIR)$(LIBDIR)/libhakmem.so'
	$(INSTALL) -m 644 $(BUILD)/libhakmem.a '$(DESTDIR)$(LIBDIR)/libhakmem.a'
	$(INSTALL) -m 644 include/hakmem.h include/hakmem_spsc.h '$(DESTDIR)$(INCLUDEDIR)'
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@EXEC_PREFIX@|$(call hk_pc_prefix,$(EXEC_PREFIX))|' \
	    -e 's|@LIBDIR@|$(call hk_pc_exec,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(call hk_pc_prefix,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VERSION)|' \
	    pkg/hakmem.pc.in >'$(DESTDIR)$(PKGCONFIGDIR)/hakmem.pc'
	sed -e "s|@LIB_FROM_CMAKE@|$(call hk_rel,$(CMAKEDIR),$(LIBDIR))|" \
	    -e "s|@INCLUDE_FROM_CMAKE@|$(call hk_rel,$(CMAKEDIR),$(INCLUDEDIR))|" \
	    -e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(VERSION_MAJOR)|' \
	    pkg/hakmemConfig.cmake.in >'$(DESTDIR)$(CMAKEDIR)/hakmemConfig.cmake'
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(VERSION_MAJOR)|' \
	    pkg/hakmemConfigVersion.cmake.in >'$(DESTDIR)$(CMAKEDIR)/hakmemConfigVersion.cmake'
	sed -e "s|@LIB@|$(call hk_rel,$(BINDIR),$(LIBDIR))/$(SONAME)|" \
	    -e "s|@HARDENED_LIB@|$(call hk_rel,$(BINDIR),$(HARDENEDDIR))/libhakmem.so|" \
	    $(BUILD)/launcher.sh >'$(DESTDIR)$(BINDIR)/hakmem'
	chmod 755 '$(DESTDIR)$(BINDIR)/hakmem'
	chmod 644 '$(DESTDIR)$(PKGCONFIGDIR)/hakmem.pc' '$(DESTDIR)$(CMAKEDIR)/hakmemConfig.cmake' \
	    '$(DESTDIR)$(CMAKEDIR)/hakmemConfigVersion.cmake'
	$(INSTALL) -m 644 $(BUILD)/man/hakmem.1 '$(DESTDIR)$(MANDIR)/man1/hakmem.1'
	$(INSTALL) -m 644 $(BUILD)/man/hakmem.3 '$(DESTDIR)$(MANDIR)/man3/hakmem.3'
	@if [ -f $(HARDENED_LIB) ]; then \
	    echo "installing the hardened build ($(HARDENED_LIB))"; \
	    $(INSTALL) -d '$(DESTDIR)$(HARDENEDDIR)' && \
	    $(INSTALL) -m 755 $(HARDENED_LIB) '$(DESTDIR)$(HARDENEDDIR)/libhakmem.so'; \
	else echo "no $(HARDENED_LIB) ('make hardened' builds it): hakmem --hardened not installed"; fi
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then \
	    echo $(LDCONFIG); $(LDCONFIG); fi

uninstall:
	rm -f $(foreach f,$(INSTALLED),'$(DESTDIR)$(f)')
	@for d in '$(CMAKEDIR)' '$(HARDENEDDIR)' '$(LIBDIR)/hakmem'; do \
	    if [ -d "$(DESTDIR)$$d" ]; then rmdir "$(DESTDIR)$$d" 2>/dev/null || \
	        echo "kept $(DESTDIR)$$d: it holds other files"; fi; \
	done

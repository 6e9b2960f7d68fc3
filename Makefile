# Each target is a thin call into scripts/; the logic (and its error messages) lives there.
SHELL := /bin/bash
SCRIPTS := scripts

.PHONY: help setup lint sanity units lab-up lab-down integration demo test bench changelog-lint clean distclean

help:
	@echo "targets: setup lint sanity units lab-up lab-down integration demo test bench changelog-lint clean distclean"

setup:
	$(SCRIPTS)/setup-host.sh

lint:
	$(SCRIPTS)/lint.sh

sanity:
	$(SCRIPTS)/sanity.sh

units:
	$(SCRIPTS)/units.sh

lab-up:
	$(SCRIPTS)/lab.sh up

lab-down:
	$(SCRIPTS)/lab.sh down

integration:
	$(SCRIPTS)/integration.sh

demo: setup lab-up
	$(SCRIPTS)/demo.sh

test:
	$(SCRIPTS)/test.sh

bench:
	$(SCRIPTS)/bench.sh

changelog-lint:
	$(SCRIPTS)/changelog-lint.sh

clean:
	$(SCRIPTS)/clean.sh

distclean:
	DISTCLEAN=1 $(SCRIPTS)/clean.sh

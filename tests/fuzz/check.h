/* The fuzz targets' assertion: names the broken expectation on stderr, then aborts, which
 * libFuzzer and the regression driver both report as a crash with this input. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);        \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

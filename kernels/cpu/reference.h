#pragma once
// The CPU reference: one plain function per op and direction, the specification every faster or
// GPU path is tested against. Outputs first, then inputs, then sizes; shapes are documented at each
// function. Every *_backward_input ADDS its contribution into dx (the caller zeroes it), so gradients
// of values with several consumers sum. All are templates over the element type: the backend runs
// them in float, the finite-difference tests in double.
#include "kernels/cpu/activation.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/concat.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/lrn.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/softmax.h"

#include <catch2/catch.hpp>

#include "engine/error.h"
#include "engine/tensor.h"

using namespace deepinside;

TEST_CASE("Tensor is zero-filled, reshapes within its size and clones deeply", "[tensor]") {
  Tensor t(Shape{2, 3});
  REQUIRE(t.numel() == 6);
  REQUIRE(t[5] == 0.0f);
  t[1] = 4.0f;
  Tensor c = t.clone();
  c[1] = 5.0f;
  REQUIRE(t[1] == 4.0f);
  t.reshape({3, 2});
  REQUIRE(t.dim(0) == 3);
  REQUIRE_THROWS_AS(t.reshape({4, 2}), Error);
}

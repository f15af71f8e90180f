/** Loads every balancing policy so each registers its strategy name. @module */

import "./wrr.ts";
import "./p2c.ts";
import "./hrw.ts";
import "./leasttime.ts";

export { type BalancingPolicy, policyFor, policyNames, type PolicyServer } from "./policy.ts";

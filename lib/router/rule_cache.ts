/**
 * Compiled rules kept from one config generation to the next, so a reload
 * of 10,000 routers recompiles only the rules that changed. Only rules used
 * by the latest build are kept, so the cache never outgrows the config.
 *
 * @module
 */

import { compileRule, type CompiledRule } from "../rules/mod.ts";

export class RuleCache {
  private previous = new Map<string, CompiledRule>();
  private current = new Map<string, CompiledRule>();

  /** The compiled rule (throws RuleSyntaxError like compileRule). */
  compile(rule: string, priority: number): CompiledRule {
    const key = `${priority}\u0000${rule}`;
    let compiled = this.current.get(key) ?? this.previous.get(key);
    if (!compiled) compiled = compileRule(rule, priority);
    this.current.set(key, compiled);
    return compiled;
  }

  /** Ends a build: rules not used by it are dropped at the end of the next one. */
  finishBuild(): void {
    this.previous = this.current;
    this.current = new Map();
  }
}

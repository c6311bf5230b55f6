// Reads a CloudFormation/SAM template written in YAML, short intrinsic tags included (!Ref,
// !Sub, !GetAtt …), into the same JSON shape as the long forms ({"Fn::Sub": …}).
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Tags } from 'yaml';

const FUNCTIONS = ['And', 'Base64', 'Cidr', 'Condition', 'Equals', 'FindInMap', 'GetAtt', 'GetAZs', 'If', 'ImportValue', 'Join', 'Not', 'Or', 'Ref', 'Select', 'Split', 'Sub', 'Transform'];

function wrap(fn: string, value: unknown): Record<string, unknown> {
  const key = fn === 'Ref' || fn === 'Condition' ? fn : `Fn::${fn}`;
  // !GetAtt Resource.Attribute is the short form of ["Resource", "Attribute"].
  if (fn === 'GetAtt' && typeof value === 'string') {
    const dot = value.indexOf('.');
    return { [key]: [value.slice(0, dot), value.slice(dot + 1)] };
  }
  return { [key]: value };
}

const customTags: Tags = FUNCTIONS.flatMap((fn) => [
  { tag: `!${fn}`, resolve: (s: string) => wrap(fn, s) },
  { tag: `!${fn}`, collection: 'seq' as const, resolve: (node: { toJSON(): unknown }) => wrap(fn, node.toJSON()) },
  { tag: `!${fn}`, collection: 'map' as const, resolve: (node: { toJSON(): unknown }) => wrap(fn, node.toJSON()) },
]);

export type Template = {
  Parameters?: Record<string, { Default?: unknown }>;
  Globals?: { Function?: Record<string, unknown> };
  Resources: Record<string, { Type: string; Condition?: string; Properties?: any; Metadata?: any }>;
};

export function readCfnYaml(file: string): Template {
  return parse(readFileSync(file, 'utf8'), { customTags, maxAliasCount: -1 }) as Template;
}

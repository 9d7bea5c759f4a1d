/**
 * A fast check of parsed JSON against a schema whose decoding changes nothing: every stored
 * value is decoded on each L2 read, and Schema's decoder (which builds a copy of the value and
 * a result per field) costs several times the `JSON.parse` before it.
 *
 * `compile` understands a subset of the AST: strings, numbers, booleans, literals, `Unknown`,
 * structs without index signatures, arrays (`Schema.Array`), and unions of those where at most
 * one member is not a primitive. For anything else (refinements, transformations, classes,
 * records, tuples, recursion) it returns `undefined` and the loader decodes with Schema alone.
 *
 * A check that passes means Schema's decode would succeed and return a value equal to its input,
 * properties in the same order: the parsed value is the answer as it is. The same holds of a
 * value to encode: Schema's encode would give it back unchanged, so `JSON.stringify` of it is
 * what the store gets (a value with a `toJSON` of its own fails the check: Schema's copy would
 * not have it). A check that fails proves nothing (an extra property that decoding would drop,
 * properties in another order, or an invalid value): the caller then decodes with Schema,
 * which decides and builds the value.
 */
import * as AST from "effect/SchemaAST"

/** Whether a parsed JSON value is exactly what decoding would return. */
export type Check = (u: unknown) => boolean

interface Property {
  readonly name: string
  readonly optional: boolean
  readonly check: Check
}

const isString: Check = (u) => typeof u === "string"
const isNumber: Check = (u) => typeof u === "number"
const isBoolean: Check = (u) => typeof u === "boolean"
const isUndefined: Check = (u) => u === undefined
const anything: Check = () => true

const isPrimitive = (ast: AST.AST): boolean =>
  ast._tag === "StringKeyword" || ast._tag === "NumberKeyword" || ast._tag === "BooleanKeyword" ||
  ast._tag === "Literal" || ast._tag === "UndefinedKeyword"

/** `JSON.stringify` would write what `toJSON` returns, not the properties the schema encodes. */
const hasToJSON = (o: object): boolean => typeof (o as { readonly toJSON?: unknown }).toJSON === "function"

/**
 * The struct's properties in their order, and nothing else: a required one missing, one out of
 * order or one the schema does not know fails the check.
 */
const structCheck = (properties: ReadonlyArray<Property>): Check => (u) => {
  if (typeof u !== "object" || u === null || Array.isArray(u) || hasToJSON(u)) return false
  const o = u as Record<string, unknown>
  let j = 0
  for (const key in o) {
    while (j < properties.length && properties[j]!.name !== key) {
      if (!properties[j]!.optional) return false
      j++
    }
    if (j === properties.length || !properties[j]!.check(o[key])) return false
    j++
  }
  for (; j < properties.length; j++) if (!properties[j]!.optional) return false
  return true
}

/** A check equivalent to decoding `ast` (see the module's doc), or `undefined` when it has none. */
export const compile = (ast: AST.AST): Check | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
      return isString
    case "NumberKeyword":
      return isNumber
    case "BooleanKeyword":
      return isBoolean
    case "UndefinedKeyword":
      return isUndefined
    case "UnknownKeyword":
    case "AnyKeyword":
      return anything
    case "Literal": {
      const literal = ast.literal
      return typeof literal === "bigint" ? undefined : (u) => u === literal
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) return undefined
      const properties: Array<Property> = []
      for (const p of ast.propertySignatures) {
        if (typeof p.name !== "string" || p.name === "__proto__") return undefined
        const check = compile(p.type)
        if (check === undefined) return undefined
        properties.push({ name: p.name, optional: p.isOptional, check })
      }
      return structCheck(properties)
    }
    case "TupleType": {
      // `Schema.Array`: no fixed elements, one rest element
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined
      const item = compile(ast.rest[0]!.type)
      if (item === undefined) return undefined
      return (u) => {
        if (!Array.isArray(u) || hasToJSON(u)) return false
        for (let i = 0; i < u.length; i++) if (!item(u[i])) return false
        return true
      }
    }
    case "Union": {
      // with two members that are not primitives, decoding may pick one that drops properties
      // where another keeps them: only Schema knows which
      if (ast.types.filter((t) => !isPrimitive(t)).length > 1) return undefined
      const members: Array<Check> = []
      for (const t of ast.types) {
        const check = compile(t)
        if (check === undefined) return undefined
        members.push(check)
      }
      return (u) => {
        for (let i = 0; i < members.length; i++) if (members[i]!(u)) return true
        return false
      }
    }
    default:
      return undefined
  }
}

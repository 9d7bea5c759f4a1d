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
 * value to encode, with the check compiled for values (`"value"`): Schema's encode would give it
 * back unchanged, so `JSON.stringify` of it is what the store gets. A value is not parsed JSON:
 * Schema reads properties that `JSON.stringify` does not write (inherited, not enumerable; a
 * symbol under `onExcessProperty`), and its copy has no `toJSON`: an object with any of them
 * fails the check (see `structCheck`).
 * A check that fails proves nothing (an extra property that decoding would drop,
 * properties in another order, or an invalid value): the caller then decodes with Schema,
 * which decides and builds the value.
 */
import * as AST from "effect/SchemaAST"

/** Whether a value (parsed JSON, or one to write: see `Source`) is exactly what Schema would return. */
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
 * What a check is given: what `JSON.parse` made (plain objects with their own enumerable string
 * keys only, so `for…in` lists exactly them), or any value a lookup or a `set` hands over.
 */
export type Source = "json" | "value"

const hasOwn = (o: object, name: string): boolean => Object.prototype.hasOwnProperty.call(o, name)

/**
 * The struct's properties in their order, and nothing else: a required one missing, one out of
 * order or one the schema does not know fails the check.
 *
 * A value (not parsed JSON) may also have properties Schema reads and `JSON.stringify` does not
 * write: inherited ones (Schema reads one it requires; a value with a prototype other than
 * `Object.prototype` is left to Schema), own ones that are not enumerable (`for…in` skips them:
 * an optional property it skips must not be own), and, where `onExcessProperty` makes Schema
 * look at every own key (`strictKeys`), symbols and extra properties that are not enumerable.
 */
const structCheck = (properties: ReadonlyArray<Property>, source: Source, strictKeys: boolean): Check => {
  const values = source === "value"
  // one function for both sources: a check of values runs beside the checks of parsed JSON,
  // and call sites that see one function stay fast
  return (u) => {
    if (typeof u !== "object" || u === null || Array.isArray(u) || hasToJSON(u)) return false
    const o = u as Record<string, unknown>
    if (values) {
      const proto = Object.getPrototypeOf(o)
      if (proto !== Object.prototype && proto !== null) return false
      if (strictKeys && Object.keys(o).length !== Reflect.ownKeys(o).length) return false
    }
    let j = 0
    for (const key in o) {
      while (j < properties.length && properties[j]!.name !== key) {
        if (!properties[j]!.optional || (values && hasOwn(o, properties[j]!.name))) return false
        j++
      }
      if (j === properties.length || !properties[j]!.check(o[key])) return false
      j++
    }
    for (; j < properties.length; j++) {
      if (!properties[j]!.optional || (values && hasOwn(o, properties[j]!.name))) return false
    }
    return true
  }
}

/** A check equivalent to decoding `ast` (see the module's doc), or `undefined` when it has none. */
export const compile = (ast: AST.AST, source: Source = "json"): Check | undefined => go(ast, source, false)

/**
 * Whether Schema parses `ast` looking at every own key of a struct (`onExcessProperty` "error"
 * or "preserve"): a `parseOptions` annotation holds for the node and what it contains.
 */
const strictKeysAt = (ast: AST.AST, outer: boolean): boolean => {
  const options = AST.getParseOptionsAnnotation(ast)
  if (options._tag === "None" || typeof options.value !== "object" || !("onExcessProperty" in options.value)) return outer
  return options.value.onExcessProperty === "error" || options.value.onExcessProperty === "preserve"
}

const go = (ast: AST.AST, source: Source, outerStrictKeys: boolean): Check | undefined => {
  const strictKeys = strictKeysAt(ast, outerStrictKeys)
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
        const check = go(p.type, source, strictKeys)
        if (check === undefined) return undefined
        properties.push({ name: p.name, optional: p.isOptional, check })
      }
      return structCheck(properties, source, strictKeys)
    }
    case "TupleType": {
      // `Schema.Array`: no fixed elements, one rest element
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined
      const item = go(ast.rest[0]!.type, source, strictKeys)
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
        const check = go(t, source, strictKeys)
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

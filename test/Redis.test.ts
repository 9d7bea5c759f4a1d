/**
 * One contract, two stores: the in-memory layer is held to exactly the protocol the Lua scripts
 * implement on a real redis-server.
 */
import { contract } from "./support/contract.js"
import { memoryCase, redisCase } from "./support/stores.js"

contract(memoryCase)
contract(redisCase())

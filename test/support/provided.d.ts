import "vitest"

declare module "vitest" {
  export interface ProvidedContext {
    redisPort: number
    mariadbPort: number
  }
}

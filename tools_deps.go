//go:build deps

package deps

import (
	_ "firebase.google.com/go/v4/messaging"
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/getkin/kin-openapi/openapi3filter"
	_ "github.com/glebarez/sqlite"
	_ "github.com/gofiber/fiber/v2"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/google/uuid"
	_ "github.com/hibiken/asynq"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/paulmach/orb/geojson"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/tidwall/rtree"
	_ "golang.org/x/crypto/bcrypt"
	_ "google.golang.org/api/option"
	_ "gorm.io/driver/postgres"
	_ "gorm.io/gorm"
	_ "sigs.k8s.io/yaml"
)

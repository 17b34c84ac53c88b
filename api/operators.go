package api

import "github.com/gofiber/fiber/v2"

// operatorRoutes mounts the routes of operators' tools.
func (s *Server) operatorRoutes(app *fiber.App, v1 fiber.Router) {}

package api

import "github.com/gofiber/fiber/v2"

// uploadRoutes mounts the routes of direct uploads to the object store.
func (s *Server) uploadRoutes(app *fiber.App, v1 fiber.Router) {}
